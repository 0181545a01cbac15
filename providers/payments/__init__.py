"""The payment provider, as the worker's steps see it: one set of calls, two providers behind it.

:mod:`providers.payments.provider` says what every provider offers (the calls, their results and
errors), :mod:`providers.payments.sandbox` is the sandbox provider's HTTP client,
:mod:`providers.payments.stripe_provider` is Stripe through its official SDK, and
:mod:`providers.payments.choice` picks one from the settings (``PSP_PROVIDER``). Stripe's
webhook events are turned into the same events as the sandbox's by
:mod:`providers.payments.stripe_events`.
"""
