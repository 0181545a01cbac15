"""The sandbox provider's books: payments, refunds, idempotency keys and the events they cause.

Everything here is plain in-memory state with no I/O, so the HTTP layer can call it without
awaiting between a check and the write that depends on it (one event loop means no races).
Operations return the events to deliver; the caller hands them to the webhook sender.

The books are shared by the provider's faces (psp.py's native API, stripe_face's Stripe-shaped
one): each payment remembers the face that made it (``face``), which words its webhooks. Events
here are canonical (``data.payment_id``); a face renders them under the same event id.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

# Test tokens, named like a real provider's test cards.
TOKEN_OK = "pm_card_ok"
TOKEN_DECLINED = "pm_card_declined"
TOKEN_NO_RESPONSE = "pm_card_no_response"
TEST_TOKENS = (TOKEN_OK, TOKEN_DECLINED, TOKEN_NO_RESPONSE)

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"

# The faces a payment can be made through.
NATIVE = "native"
STRIPE = "stripe"


class ProviderError(Exception):
    """A request the provider refuses; becomes ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Payment:
    """One payment as the provider sees it."""

    id: str
    amount_cents: int
    currency: str
    metadata: dict[str, Any]
    created: int
    # "token" or "redirect" once the payer chose how to pay; None before (a Stripe-face
    # PaymentIntent created without confirming).
    method: str | None = None
    checkout_url: str | None = None
    status: str = PENDING
    amount_refunded_cents: int = 0
    face: str = NATIVE
    cancelled_at: int | None = None

    @property
    def order_id(self) -> str:
        """The order this payment is for, as the caller put it in the metadata."""
        return str(self.metadata.get("order_id", ""))

    def to_json(self) -> dict[str, Any]:
        """The payment as the API shows it."""
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "amount_cents": self.amount_cents,
            "amount_refunded_cents": self.amount_refunded_cents,
            "currency": self.currency,
            "method": self.method,
            "metadata": self.metadata,
            "created": self.created,
        }
        if self.checkout_url is not None:
            body["checkout_url"] = self.checkout_url
        return body


@dataclass
class Refund:
    """One refund of (part of) a succeeded payment; sandbox refunds succeed at once."""

    id: str
    payment_id: str
    amount_cents: int
    created: int
    currency: str = "USD"
    status: str = SUCCEEDED
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The refund as the API shows it."""
        return {
            "id": self.id,
            "payment_id": self.payment_id,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "status": self.status,
            "created": self.created,
            "metadata": dict(self.metadata),
        }


@dataclass
class _IdempotentResult:
    fingerprint: str
    object_id: str


@dataclass
class Ledger:
    """All state of one provider instance."""

    public_url: str
    payments: dict[str, Payment] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _keys: dict[str, _IdempotentResult] = field(default_factory=dict)

    # -- idempotency -------------------------------------------------------------------------

    def replay(self, key: str, fingerprint: str) -> str | None:
        """Return the id of the object an earlier request with ``key`` created, if any.

        ``fingerprint`` identifies the request (path and body); reusing a key for a different
        request is the caller's bug, so it is refused with 422 rather than silently answered.
        """
        known = self._keys.get(key)
        if known is None:
            return None
        if known.fingerprint != fingerprint:
            raise ProviderError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            )
        return known.object_id

    def _remember(self, key: str | None, fingerprint: str | None, object_id: str) -> None:
        # The Stripe face keeps idempotency keys of its own (it replays whole responses), so it
        # passes none here, and its keys never meet the native face's.
        if key is not None and fingerprint is not None:
            self._keys[key] = _IdempotentResult(fingerprint, object_id)

    # -- payments ----------------------------------------------------------------------------

    def payment(self, payment_id: str) -> Payment:
        """Return the payment or raise 404 ``payment_not_found``."""
        found = self.payments.get(payment_id)
        if found is None:
            raise ProviderError(404, "payment_not_found", f"no payment {payment_id!r}")
        return found

    def checkout_url(self, payment_id: str) -> str:
        """The page where the customer finishes a pending payment (``/checkout/{id}``)."""
        return f"{self.public_url}/checkout/{payment_id}"

    def create_payment(
        self,
        *,
        key: str | None,
        fingerprint: str | None,
        amount_cents: int,
        currency: str,
        method: str,
        token: str | None,
        metadata: dict[str, Any],
    ) -> tuple[Payment, list[dict[str, Any]]]:
        """Record a new payment; a token payment is decided at once by its test token."""
        _check_token(method, token)
        payment = self.open_payment(amount_cents=amount_cents, currency=currency, metadata=metadata)
        self._remember(key, fingerprint, payment.id)
        return payment, self.submit(payment.id, method=method, token=token)

    def open_payment(
        self,
        *,
        amount_cents: int,
        currency: str,
        metadata: dict[str, Any],
        face: str = NATIVE,
        prefix: str = "pay",
    ) -> Payment:
        """Record a pending payment whose payer has not yet said how they pay (see :meth:`submit`).

        ``prefix`` starts its id (``pi`` for a Stripe PaymentIntent).
        """
        payment = Payment(
            id=_new_id(prefix),
            amount_cents=amount_cents,
            currency=currency,
            metadata=metadata,
            created=int(time.time()),
            face=face,
        )
        self.payments[payment.id] = payment
        return payment

    def submit(self, payment_id: str, *, method: str, token: str | None) -> list[dict[str, Any]]:
        """The payer says how they pay: a ``token`` payment is decided at once by its test token
        (``pm_card_no_response`` stays pending for good); a ``redirect`` one waits for the
        customer at its checkout page. Once only: 409 ``already_submitted`` after that."""
        _check_token(method, token)
        payment = self.payment(payment_id)
        if payment.method is not None or payment.status != PENDING:
            raise ProviderError(409, "already_submitted", "the payer already chose how to pay")
        payment.method = method
        if method == "redirect":
            payment.checkout_url = self.checkout_url(payment.id)
        if token == TOKEN_OK:
            return self._decide(payment, SUCCEEDED)
        if token == TOKEN_DECLINED:
            return self._decide(payment, FAILED)
        # TOKEN_NO_RESPONSE and redirect payments stay pending: the customer has yet to act.
        return []

    def approve(self, payment_id: str) -> tuple[Payment, list[dict[str, Any]]]:
        """The customer completed the payment. Approving again is a no-op (no second webhook)."""
        return self._customer_outcome(payment_id, SUCCEEDED)

    def decline(self, payment_id: str) -> tuple[Payment, list[dict[str, Any]]]:
        """The customer's payment failed. Declining again is a no-op (no second webhook)."""
        return self._customer_outcome(payment_id, FAILED)

    def _customer_outcome(self, payment_id: str, outcome: str) -> tuple[Payment, list[dict[str, Any]]]:
        payment = self.payment(payment_id)
        if payment.status == CANCELLED:
            raise ProviderError(409, "payment_cancelled", "the payment was cancelled")
        if payment.status == outcome:
            return payment, []
        if payment.status != PENDING:
            raise ProviderError(409, "already_decided", f"the payment already {payment.status}")
        if payment.method is None:
            # A Stripe PaymentIntent not yet confirmed: nobody was sent to its checkout page.
            raise ProviderError(409, "not_submitted", "the payer has not yet chosen how to pay")
        return payment, self._decide(payment, outcome)

    def cancel(self, payment_id: str) -> tuple[Payment, list[dict[str, Any]]]:
        """Cancel a pending payment so it can never succeed; cancelling twice is a no-op.

        A Stripe-face payment may also be cancelled after it failed (a declined PaymentIntent
        waits for another payment method, and Stripe lets one cancel it then), and its
        cancellation is an event (``payment.cancelled``, Stripe's ``payment_intent.canceled``);
        a native cancellation sends none.
        """
        payment = self.payment(payment_id)
        if payment.status == CANCELLED:
            return payment, []
        if payment.status == SUCCEEDED:
            raise ProviderError(409, "already_succeeded", "the payment already succeeded; refund it")
        if payment.status == FAILED and payment.face != STRIPE:
            raise ProviderError(409, "already_failed", "the payment already failed; nothing to cancel")
        payment.status = CANCELLED
        payment.cancelled_at = int(time.time())
        return payment, [self._event("payment.cancelled", payment)] if payment.face == STRIPE else []

    def _decide(self, payment: Payment, outcome: str) -> list[dict[str, Any]]:
        payment.status = outcome
        kind = "payment.succeeded" if outcome == SUCCEEDED else "payment.failed"
        return [self._event(kind, payment)]

    # -- refunds -----------------------------------------------------------------------------

    def refund(self, refund_id: str) -> Refund:
        """Return the refund or raise 404 ``refund_not_found``."""
        found = self.refunds.get(refund_id)
        if found is None:
            raise ProviderError(404, "refund_not_found", f"no refund {refund_id!r}")
        return found

    def create_refund(
        self,
        *,
        key: str | None,
        fingerprint: str | None,
        payment_id: str,
        amount_cents: int | None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[Refund, list[dict[str, Any]]]:
        """Refund ``amount_cents`` (default: all that is left) of a succeeded payment; over-refunds
        are refused (400 ``amount_too_large``), as a real provider does."""
        payment = self.payment(payment_id)
        if payment.status != SUCCEEDED:
            raise ProviderError(
                409,
                "not_refundable",
                f"only succeeded payments can be refunded; this one is {payment.status}",
            )
        left = payment.amount_cents - payment.amount_refunded_cents
        if left == 0:
            raise ProviderError(409, "already_refunded", "the payment is already fully refunded")
        amount = left if amount_cents is None else amount_cents
        if amount > left:
            raise ProviderError(
                400, "amount_too_large", f"at most {left} cents of this payment can still be refunded"
            )
        refund = Refund(
            id=_new_id("re"),
            payment_id=payment.id,
            amount_cents=amount,
            created=int(time.time()),
            currency=payment.currency,
            metadata=dict(metadata or {}),
        )
        payment.amount_refunded_cents += amount
        self.refunds[refund.id] = refund
        self._remember(key, fingerprint, refund.id)
        return refund, [self._event("refund.succeeded", payment, refund)]

    # -- events ------------------------------------------------------------------------------

    def _event(self, kind: str, payment: Payment, refund: Refund | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "payment_id": payment.id,
            "amount_cents": payment.amount_cents if refund is None else refund.amount_cents,
            "currency": payment.currency,
            # A refund's event carries the refund's metadata (ours: order, payment and refund ids).
            "metadata": {**payment.metadata, **(refund.metadata if refund is not None else {})},
        }
        if refund is not None:
            data["refund_id"] = refund.id
        event = {"id": _new_id("evt"), "type": kind, "created": int(time.time()), "data": data}
        self.events.append(event)
        return event


def _check_token(method: str, token: str | None) -> None:
    if method == "token" and token not in TEST_TOKENS:
        raise ProviderError(400, "invalid_token", f"unknown test token; use one of {', '.join(TEST_TOKENS)}")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
