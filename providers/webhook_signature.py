"""Signing and verifying payment-provider webhooks (HMAC-SHA256 over ``"{t}.{raw body}"``).

Header format: ``PSP-Signature: t=<unix seconds>,v1=<hex digest>``. The sandbox provider signs
with :func:`sign`; the gateway checks with :func:`verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "PSP-Signature"
#: Stripe signs its webhooks by the same scheme, under a header of its own.
STRIPE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The webhook's signature is missing, malformed, stale or wrong."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Return the ``PSP-Signature`` header value for ``body``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(
    secret: str, body: bytes, header: str | None, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs ``body`` within ``tolerance`` seconds."""
    if not header:
        raise SignatureError("missing PSP-Signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("PSP-Signature has no valid timestamp") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("PSP-Signature timestamp outside the tolerance")
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("PSP-Signature does not match the body")
