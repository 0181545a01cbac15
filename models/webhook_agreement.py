"""Whether a provider event agrees with our records and with the provider's own record.

A valid signature proves only that someone holding the webhook secret sent the event: a faulty
provider, a replayed test event or a leaked secret all sign correctly. So ``settle`` applies an
event only when it agrees, field by field, with the payment it is about:

- with our records: every claim the event makes (provider payment id, our payment id, order,
  amount, currency, and for a refund the refund ids) equals what we recorded, wherever we
  recorded it; a refund must also be one we asked for, and its amount that refund's;
- with the provider: before an event changes anything, the provider's own record of the payment
  (fetched by its id) must name the same order and payment, the same amount and currency, and be
  in the state the event reports; for a refund, the provider's record of the refund must be of
  that payment, for that amount, succeeded, and name our refund. This also covers what our
  records cannot vouch for yet, such as a provider id that `pay` (or `refund`) has not recorded
  when the webhook overtakes it.

Each check returns the names of the fields that disagree, in a fixed order (the first is the
one counted in the mismatch metric); an empty list means agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from models.state import PaymentStatus

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
REFUND_SUCCEEDED = "refund.succeeded"
#: Event types settle acts on; any other type is acknowledged and changes nothing.
HANDLED_TYPES = frozenset({PAYMENT_SUCCEEDED, PAYMENT_FAILED, REFUND_SUCCEEDED})
#: The recorded outcome of an event of any other type (the gateway records it so at once).
UNHANDLED_OUTCOME = "unhandled_type"

#: What a payment event says the provider's payment is now (a refund event: see below).
_PROVIDER_STATUS = {PAYMENT_SUCCEEDED: "succeeded", PAYMENT_FAILED: "failed"}

#: Our payment statuses in which a refund was asked of the provider.
_REFUND_ASKED = (PaymentStatus.REFUND_PENDING, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


class RecordedPayment(Protocol):
    """Our record of a payment: the order record's (``models.order_record.PaymentRecord``), which
    settle reads under the order's lock, or a ``models.tables.Payment`` row. Only read here."""

    @property
    def id(self) -> str: ...
    @property
    def order_id(self) -> str: ...
    @property
    def amount_cents(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def provider_payment_id(self) -> str | None: ...
    @property
    def provider_refund_id(self) -> str | None: ...


class RecordedRefund(Protocol):
    """Our record of one refund (``models.refunds.RefundRecord``). Only read here."""

    @property
    def id(self) -> str: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def amount_cents(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def provider_refund_id(self) -> str | None: ...


class ProviderRefundRecord(Protocol):
    """The provider's record of a refund (``providers.payments.provider.ProviderRefundDetails``)."""

    @property
    def payment_id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def amount_cents(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, Any]: ...


class ProviderRecord(Protocol):
    """The provider's record of a payment (``providers.payments.provider.ProviderPaymentDetails``, a frozen
    dataclass: its fields are read-only). Only read here."""

    @property
    def status(self) -> str: ...
    @property
    def amount_cents(self) -> int | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    @property
    def amount_refunded_cents(self) -> int | None: ...


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Claims:
    """What one event says about the payment; None where it says nothing."""

    event_type: str
    provider_payment_id: str | None
    order_id: str | None
    payment_id: str | None
    amount_cents: Any
    currency: Any
    refund_id: Any
    #: Our id of the refund, from the refund's metadata (a refund event only).
    our_refund_id: str | None = None

    @classmethod
    def of(cls, event_type: str, payload: dict[str, Any]) -> Claims:
        """The claims of a stored event payload (as the gateway recorded it)."""
        data = payload.get("data")
        if not isinstance(data, dict):
            data = {}
        metadata = data.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
        return cls(
            event_type=event_type,
            provider_payment_id=_text(data.get("payment_id")),
            order_id=_text(metadata.get("order_id")),
            payment_id=_text(metadata.get("payment_id")),
            amount_cents=data.get("amount_cents"),
            currency=data.get("currency"),
            refund_id=data.get("refund_id"),
            our_refund_id=_text(metadata.get("refund_id")),
        )

    def stated(self) -> dict[str, Any]:
        """The claims the event makes (for the log), leaving out what it does not say."""
        values = {
            "provider_payment_id": self.provider_payment_id,
            "order_id": self.order_id,
            "payment_id": self.payment_id,
            "amount": self.amount_cents,
            "currency": self.currency,
            "refund_id": self.refund_id,
        }
        return {name: value for name, value in values.items() if value is not None}


def _same_amount(claimed: Any, recorded: int) -> bool:
    return type(claimed) is int and claimed == recorded


def _same_currency(claimed: Any, recorded: str) -> bool:
    # ISO 4217 codes are case-insensitive ("usd" is USD); anything else is another currency.
    return isinstance(claimed, str) and claimed.upper() == recorded.upper()


def recorded(payment: RecordedPayment) -> dict[str, Any]:
    """Our record of the payment, under the same names as :meth:`Claims.stated` (for the log)."""
    return {
        "provider_payment_id": payment.provider_payment_id,
        "order_id": payment.order_id,
        "payment_id": payment.id,
        "amount": payment.amount_cents,
        "currency": payment.currency,
        "refund_id": payment.provider_refund_id,
        "status": payment.status,
    }


def disagreements_with_records(claims: Claims, payment: RecordedPayment) -> list[str]:
    """The fields in which the event contradicts what we recorded of ``payment``.

    A claim the event leaves out, or a value we have not recorded yet (the provider id before
    `pay` stores it), contradicts nothing here: the provider confirms it before any change.
    """
    fields = []
    if claims.provider_payment_id is None or (
        payment.provider_payment_id is not None and claims.provider_payment_id != payment.provider_payment_id
    ):
        fields.append("provider_payment_id")
    elif claims.event_type == REFUND_SUCCEEDED and payment.provider_payment_id is None:
        fields.append("provider_payment_id")  # a refund is only ever asked for a known provider payment
    if claims.order_id is not None and claims.order_id != payment.order_id:
        fields.append("order_id")
    if claims.payment_id is not None and claims.payment_id != payment.id:
        fields.append("payment_id")
    if (
        claims.event_type != REFUND_SUCCEEDED
        and claims.amount_cents is not None
        and not _same_amount(claims.amount_cents, payment.amount_cents)
    ):
        # A refund's amount is that refund's: see disagreements_with_refund.
        fields.append("amount")
    if claims.currency is not None and not _same_currency(claims.currency, payment.currency):
        fields.append("currency")
    if claims.event_type == REFUND_SUCCEEDED and payment.status not in _REFUND_ASKED:
        fields.append("refund_not_requested")
    return fields


def disagreements_with_refund(claims: Claims, refund: RecordedRefund | None) -> list[str]:
    """The fields in which a refund event contradicts our record of the refund it is about (None:
    we asked for no such refund of this payment)."""
    if refund is None:
        return ["refund_not_requested"]
    fields = []
    if (
        not isinstance(claims.refund_id, str)
        or (refund.provider_refund_id is not None and claims.refund_id != refund.provider_refund_id)
        or (claims.our_refund_id is not None and claims.our_refund_id != refund.id)
    ):
        fields.append("refund_id")
    if not _same_amount(claims.amount_cents, refund.amount_cents):
        fields.append("amount")
    return fields


def disagreements_with_provider_refund(
    claims: Claims, refund: RecordedRefund, provider: ProviderRefundRecord | None
) -> list[str]:
    """The fields in which the provider's record of the refund (None: it has none) contradicts
    the event or our refund."""
    if provider is None:
        return ["refund_id"]
    fields = []
    if provider.payment_id != claims.provider_payment_id:
        fields.append("provider_payment_id")
    # Refunds asked for before refunds carried our ids name none; any that is named must be ours.
    named = provider.metadata.get("refund_id")
    if named is not None and named != refund.id:
        fields.append("refund_id")
    if not _same_amount(provider.amount_cents, refund.amount_cents):
        fields.append("amount")
    if provider.currency is not None and not _same_currency(provider.currency, refund.currency):
        fields.append("currency")
    if provider.status != "succeeded":
        fields.append("status")
    return fields


def disagreements_with_provider(
    claims: Claims, payment: RecordedPayment, provider: ProviderRecord | None
) -> list[str]:
    """The fields in which the provider's record (None: it has no such payment) contradicts us or
    the event."""
    if provider is None:
        return ["provider_payment_id"]
    fields = []
    if provider.metadata.get("order_id") != payment.order_id:
        fields.append("order_id")
    if provider.metadata.get("payment_id") != payment.id:
        fields.append("payment_id")
    if not _same_amount(provider.amount_cents, payment.amount_cents):
        fields.append("amount")
    if not _same_currency(provider.currency, payment.currency):
        fields.append("currency")
    if provider.status != _PROVIDER_STATUS[claims.event_type]:
        fields.append("status")
    return fields
