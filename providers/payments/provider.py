"""What a payment provider offers the steps, whoever it is: the calls, their results and errors.

Three writes, each carrying an idempotency key chosen by the caller so a retried step never pays
or refunds twice, and two reads (``get_payment``, ``get_refund``) that settle uses to confirm
what a webhook claims. Statuses are the provider client's own words, whatever the provider
calls them: a payment is ``pending``, ``succeeded``, ``failed`` or ``cancelled``; a refund is
``succeeded`` once the money went back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"


def amount_or_none(value: Any) -> int | None:
    """An amount as the provider stated it, or None when it is not a whole number of minor units
    (bool is an int in Python, but ``true`` is not an amount)."""
    return value if type(value) is int else None


class ProviderError(Exception):
    """The provider could not be reached or failed; the call may be retried."""


class ProviderRefused(Exception):
    """The provider answered that the request can never succeed (4xx)."""

    def __init__(self, status: int, code: str, detail: str = ""):
        self.status, self.code = status, code
        super().__init__(f"provider refused ({status} {code}) {detail}".strip())


class IdempotencyConflict(Exception):
    """The provider already saw this idempotency key with other parameters.

    Our keys are derived from our own ids, so this means the request for one payment or refund
    changed between two tries (a deployment in between, or a bug). Neither retrying as is nor
    giving up is safe to decide here: the step fails loudly, is retried, and ends among the
    dead letters for an operator, while the first request's outcome still arrives by webhook.
    """


@dataclass(frozen=True)
class ProviderPayment:
    id: str
    status: str
    checkout_url: str | None


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    status: str


@dataclass(frozen=True)
class ProviderRefundDetails:
    """A refund as the provider itself records it."""

    id: str
    payment_id: str | None
    status: str
    amount_cents: int | None
    currency: str | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ProviderPaymentDetails:
    """A payment as the provider itself records it: what a webhook's claims are checked against."""

    id: str
    status: str
    amount_cents: int | None
    currency: str | None
    metadata: dict[str, Any]
    #: None when the provider's payment record does not say (Stripe keeps it on the charge).
    amount_refunded_cents: int | None


class PaymentProvider(Protocol):
    """The calls every payment provider client offers (see the module docstring)."""

    async def create_payment(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        method: str,
        token: str | None,
        metadata: dict[str, str],
    ) -> ProviderPayment:
        """Create (or, with the same key, find again) a payment; a declined card is a payment
        whose status is ``failed`` (its webhook settles it), not an exception."""
        ...

    async def cancel_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Cancel (void) a payment still pending; cancelling twice is fine. ``ProviderRefused``
        with code ``already_succeeded`` once it is paid."""
        ...

    async def refund(
        self,
        *,
        idempotency_key: str,
        provider_payment_id: str,
        amount_cents: int,
        metadata: dict[str, str],
    ) -> ProviderRefund:
        """Refund ``amount_cents`` of a succeeded payment (the same key never refunds twice);
        ``ProviderRefused`` when the provider will not (e.g. more than is left)."""
        ...

    async def get_payment(self, provider_payment_id: str) -> ProviderPaymentDetails | None:
        """The provider's own record of a payment; None when it has no such payment."""
        ...

    async def get_refund(self, provider_refund_id: str) -> ProviderRefundDetails | None:
        """The provider's own record of a refund; None when it has no such refund."""
        ...

    async def close(self) -> None:
        """Release the connection pool."""
        ...
