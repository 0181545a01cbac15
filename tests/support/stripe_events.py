"""Stripe-shaped webhook events for tests, signed as Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

SECRET = "whsec_test_secret_for_the_tests"
ORDER, PAYMENT, REFUND = "a" * 32, "b" * 32, "c" * 32


def stripe_header(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe's scheme, written out from its documentation: v1 = HMAC-SHA256("{t}.{body}")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def intent(status: str = "succeeded", **changes) -> dict:
    return {
        "id": "pi_3Qx",
        "object": "payment_intent",
        "amount": 4500,
        "currency": "usd",
        "status": status,
        "metadata": {"order_id": ORDER, "payment_id": PAYMENT},
        **changes,
    }


def refund(status: str = "succeeded") -> dict:
    return {
        "id": "re_3Qx",
        "object": "refund",
        "amount": 1200,
        "currency": "usd",
        "payment_intent": "pi_3Qx",
        "status": status,
        "metadata": {"order_id": ORDER, "payment_id": PAYMENT, "refund_id": REFUND},
    }


def event_body(event_type: str, obj: dict, event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": 1_760_000_000,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
    ).encode()
