"""Stripe events for the ledger's events about Stripe-face payments, signed with ``Stripe-Signature``.

The event keeps the ledger event's id, so ``GET /v1/events`` (the canonical list, with delivery
state) finds how its delivery is going.
"""

from __future__ import annotations

from typing import Any

from providers.webhook_signature import STRIPE_HEADER as HEADER
from sandbox.psp_faces import Origin, Render
from sandbox.psp_ledger import Ledger
from sandbox.psp_webhooks import Webhook
from sandbox.stripe_face import objects
from sandbox.stripe_face.intents import StripeBooks

# The ledger's event types and Stripe's for them; refund.succeeded is announced as Stripe's
# refund.created (sandbox refunds succeed as they are made).
EVENT_TYPES = {
    "payment.succeeded": "payment_intent.succeeded",
    "payment.failed": "payment_intent.payment_failed",
    "payment.cancelled": "payment_intent.canceled",
    "refund.succeeded": "refund.created",
}


def renderer(ledger: Ledger, books: StripeBooks, secret: str) -> Render:
    """Render ledger events about Stripe-face payments as Stripe events signed with ``secret``."""

    def render(event: dict[str, Any], origin: Origin | None) -> Webhook:
        data = event["data"]
        payment = ledger.payment(data["payment_id"])
        if "refund_id" in data:
            data_object = objects.refund(ledger.refund(data["refund_id"]))
        else:
            data_object = objects.payment_intent_of(ledger, books, payment)
        event_type = EVENT_TYPES[event["type"]]
        fields = {
            "event_id": event["id"],
            "event_type": event_type,
            "payment_id": payment.id,
            "order_id": payment.order_id,
        }
        if "refund_id" in data:
            fields["refund_id"] = data["refund_id"]
        return Webhook(
            id=event["id"],
            body=objects.event(event["id"], event_type, event["created"], data_object, origin),
            signature_header=HEADER,
            secret=secret,
            log_fields=fields,
        )

    return render
