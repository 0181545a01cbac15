"""The field-by-field comparison of a provider event with our payment and the provider's record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from models.order_record import PaymentRecord
from models.refunds import RefundRecord
from models.tables import Payment
from models.webhook_agreement import (
    Claims,
    disagreements_with_provider,
    disagreements_with_provider_refund,
    disagreements_with_records,
    disagreements_with_refund,
    recorded,
)


def payment(
    status: str = "PENDING", provider_payment_id: str | None = "pay_1", provider_refund_id: str | None = None
) -> Payment:
    return Payment(
        id="p1",
        order_id="o1",
        amount_cents=1999,
        currency="USD",
        _status=status,
        provider_payment_id=provider_payment_id,
        provider_refund_id=provider_refund_id,
    )


def claims(event_type: str = "payment.succeeded", **data: Any) -> Claims:
    body = {
        "payment_id": "pay_1",
        "amount_cents": 1999,
        "currency": "USD",
        "metadata": {"order_id": "o1", "payment_id": "p1"},
        **data,
    }
    return Claims.of(event_type, {"data": body})


@dataclass
class Record:
    status: str = "succeeded"
    amount_cents: int | None = 1999
    currency: str | None = "USD"
    metadata: dict[str, Any] = field(default_factory=lambda: {"order_id": "o1", "payment_id": "p1"})
    amount_refunded_cents: int | None = 0


def test_an_event_that_agrees_disagrees_in_nothing():
    assert disagreements_with_records(claims(), payment()) == []
    assert disagreements_with_provider(claims(), payment(), Record()) == []


def test_an_order_records_payment_is_judged_as_its_row():
    """settle passes the payment of the order record it locked, not a Payment row."""
    row = payment()
    record = PaymentRecord(
        id="p1",
        order_id="o1",
        attempt=1,
        method="card",
        token=None,
        amount_cents=1999,
        currency="USD",
        status="PENDING",
        provider_payment_id="pay_1",
        checkout_url=None,
        provider_refund_id=None,
        refunded_cents=0,
        created_at=None,
        updated_at=None,
    )
    assert recorded(record) == recorded(row)
    assert disagreements_with_records(claims(), record) == []
    assert disagreements_with_records(claims(amount_cents=1), record) == ["amount"]
    assert disagreements_with_provider(claims(), record, Record(currency="EUR")) == ["currency"]


@pytest.mark.parametrize(
    "data, fields",
    [
        ({"amount_cents": 1}, ["amount"]),
        ({"amount_cents": True}, ["amount"]),  # a boolean is not an amount
        ({"amount_cents": "1999"}, ["amount"]),
        ({"currency": "JPY"}, ["currency"]),
        ({"payment_id": "pay_2"}, ["provider_payment_id"]),
        ({"payment_id": None}, ["provider_payment_id"]),
        ({"metadata": {"order_id": "o2", "payment_id": "p2"}}, ["order_id", "payment_id"]),
    ],
)
def test_each_contradicted_field_is_named(data, fields):
    assert disagreements_with_records(claims(**data), payment()) == fields


def test_currency_codes_compare_regardless_of_case():
    assert disagreements_with_records(claims(currency="usd"), payment()) == []


def test_what_the_event_leaves_out_or_we_have_not_recorded_is_left_to_the_provider():
    silent = claims(amount_cents=None, currency=None, metadata={})
    assert disagreements_with_records(silent, payment()) == []
    assert disagreements_with_records(claims(), payment(provider_payment_id=None)) == []
    assert disagreements_with_provider(silent, payment(), Record(amount_cents=1)) == ["amount"]


def our_refund(provider_refund_id: str | None = "re_1", amount_cents: int = 500) -> RefundRecord:
    return RefundRecord(
        id="r1",
        order_id="o1",
        payment_id="p1",
        amount_cents=amount_cents,
        currency="USD",
        status="PENDING",
        reason=None,
        return_id=None,
        provider_refund_id=provider_refund_id,
        created_at=None,  # type: ignore[arg-type]
    )


def refund_claims(**data: Any) -> Claims:
    metadata = {"order_id": "o1", "payment_id": "p1", "refund_id": "r1"}
    return claims(
        "refund.succeeded", **{"refund_id": "re_1", "amount_cents": 500, "metadata": metadata, **data}
    )


def test_a_refund_event_is_about_a_payment_we_asked_a_refund_of():
    assert disagreements_with_records(refund_claims(), payment("REFUND_PENDING")) == []
    # Its amount is the refund's, not the payment's.
    assert disagreements_with_records(refund_claims(), payment("PARTIALLY_REFUNDED")) == []
    assert disagreements_with_records(refund_claims(), payment("SUCCEEDED")) == ["refund_not_requested"]
    assert disagreements_with_records(
        refund_claims(), payment("REFUND_PENDING", provider_payment_id=None)
    ) == ["provider_payment_id"]


def test_a_refund_event_must_match_the_refund_we_recorded():
    assert disagreements_with_refund(refund_claims(), our_refund()) == []
    # The webhook overtook `refund` recording the provider's id: our id in the metadata names it.
    assert disagreements_with_refund(refund_claims(), our_refund(provider_refund_id=None)) == []
    assert disagreements_with_refund(refund_claims(), our_refund(provider_refund_id="re_2")) == ["refund_id"]
    assert disagreements_with_refund(refund_claims(), our_refund(amount_cents=499)) == ["amount"]
    assert disagreements_with_refund(refund_claims(refund_id=None), our_refund()) == ["refund_id"]
    assert disagreements_with_refund(refund_claims(), None) == ["refund_not_requested"]


@dataclass
class RefundAtProvider:
    payment_id: str | None = "pay_1"
    status: str = "succeeded"
    amount_cents: int | None = 500
    currency: str | None = "USD"
    metadata: dict[str, Any] = field(default_factory=lambda: {"refund_id": "r1"})


@pytest.mark.parametrize(
    "record, fields",
    [
        (RefundAtProvider(), []),
        (RefundAtProvider(metadata={}), []),  # asked for before refunds named ours
        (None, ["refund_id"]),
        (RefundAtProvider(payment_id="pay_9"), ["provider_payment_id"]),
        (RefundAtProvider(metadata={"refund_id": "r9"}), ["refund_id"]),
        (RefundAtProvider(amount_cents=1999), ["amount"]),
        (RefundAtProvider(currency="EUR"), ["currency"]),
        (RefundAtProvider(status="failed"), ["status"]),
    ],
)
def test_the_providers_record_of_the_refund_must_confirm_it(record, fields):
    assert disagreements_with_provider_refund(refund_claims(), our_refund(), record) == fields


@pytest.mark.parametrize(
    "event_type, record, fields",
    [
        ("payment.succeeded", None, ["provider_payment_id"]),
        ("payment.succeeded", Record(status="pending"), ["status"]),
        ("payment.failed", Record(status="succeeded"), ["status"]),
        (
            "payment.succeeded",
            Record(metadata={"order_id": "o9", "payment_id": "p9"}),
            ["order_id", "payment_id"],
        ),
        ("payment.succeeded", Record(currency=None), ["currency"]),
    ],
)
def test_the_providers_record_must_name_our_payment_in_the_reported_state(event_type, record, fields):
    assert disagreements_with_provider(claims(event_type), payment("PENDING"), record) == fields
