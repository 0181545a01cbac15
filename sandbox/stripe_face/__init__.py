"""A Stripe-shaped face on the sandbox payment provider, served under ``/stripe`` of its app.

It answers the calls the official ``stripe`` SDK makes for PaymentIntents and Refunds (form
bodies in, Stripe's JSON objects and errors out, Stripe's idempotency) over the same ledger as
the native API, and sends Stripe events signed with ``Stripe-Signature``. Modules: ``forms``
(decoding and reading the form parameters), ``errors`` (Stripe's error responses), ``intents``
(what a PaymentIntent holds beyond the ledger, and saved idempotent responses), ``objects`` (the
JSON objects) and ``routes`` (the handlers and the sub-app; :func:`routes.install` mounts it).
"""
