"""Stripe's webhook events: verified with the endpoint's signing secret, then turned into the
provider events that the gateway records and ``settle`` applies (those of the sandbox provider).

| Stripe event                                   | provider event      | settle                 |
|------------------------------------------------|---------------------|------------------------|
| ``payment_intent.succeeded``                   | ``payment.succeeded`` | places (or refunds) |
| ``payment_intent.payment_failed``              | ``payment.failed``  | ends the attempt        |
| ``payment_intent.canceled``                    | ``payment.cancelled`` | acknowledges (we voided it) |
| ``refund.created`` / ``refund.updated``, succeeded | ``refund.succeeded`` | confirms our refund |
| ``refund.failed``, or a refund event of another status | ``refund.<status>`` | acknowledges |

Refunds are confirmed from ``refund.*`` events, each about one refund with our ids in its
metadata. ``charge.refunded`` names the charge only (since API version 2022-11-15 without its
refunds), so it cannot say which of several partial refunds went through; like every event not
listed, it is acknowledged and not recorded.
"""

from __future__ import annotations

from typing import Any

import stripe

from providers.webhook_signature import STRIPE_HEADER as HEADER
from providers.webhook_signature import TOLERANCE_SECONDS, SignatureError

_PAYMENT_EVENTS = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.canceled": "payment.cancelled",
}
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})
#: The Stripe event types to register on the webhook endpoint (README, "Going live").
HANDLED_EVENT_TYPES = tuple(sorted({*_PAYMENT_EVENTS, *_REFUND_EVENTS}))


class InvalidStripeEvent(ValueError):
    """A correctly signed body that is not a Stripe event we can read."""


def verified_event(raw: bytes, header: str | None, secret: str) -> stripe.Event:
    """The event ``raw`` if ``header`` signs it with ``secret`` within the tolerance.

    Raises :class:`SignatureError` for a missing, stale or wrong signature (the sandbox's own
    ``PSP-Signature`` included: it is not Stripe's), :class:`InvalidStripeEvent` for a signed
    body that is not JSON.
    """
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    try:
        return stripe.Webhook.construct_event(raw, header, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as error:
        raise SignatureError(f"{HEADER}: {error.user_message}") from None
    except (ValueError, RecursionError) as error:
        raise InvalidStripeEvent(f"the signed body is not a JSON event: {error}") from None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object_id(value: Any) -> str | None:
    """An id field that Stripe may also expand into the object itself."""
    if isinstance(value, dict):
        return _text(value.get("id"))
    return _text(value)


def _metadata(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def provider_event(event: stripe.Event) -> dict[str, Any] | None:
    """The provider event that ``event`` stands for (as the sandbox provider would send it, plus
    ``stripe_type``), or None for an event type the fleet does not act on."""
    try:
        stripe_type, event_id, created = str(event.type), str(event.id), event.created
        found = event.data.object.to_dict()
    except (AttributeError, KeyError):
        raise InvalidStripeEvent("a Stripe event has an id, a type and data.object") from None
    if stripe_type in _PAYMENT_EVENTS:
        kind = _PAYMENT_EVENTS[stripe_type]
        fields = {"payment_id": _text(found.get("id"))}
    elif stripe_type in _REFUND_EVENTS:
        status = "failed" if stripe_type == "refund.failed" else _text(found.get("status")) or "unknown"
        kind = f"refund.{status}"
        fields = {"payment_id": _object_id(found.get("payment_intent")), "refund_id": _text(found.get("id"))}
    else:
        return None
    return {
        "id": event_id,
        "type": kind,
        "created": created if type(created) is int else 0,
        "data": {
            **fields,
            "amount_cents": found.get("amount"),
            "currency": found.get("currency"),
            "metadata": _metadata(found.get("metadata")),
        },
        "stripe_type": stripe_type,
    }
