"""The field-by-field comparison of a provider event with our payment and the provider's record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from models.order_record import PaymentRecord
from models.tables import Payment
from models.webhook_agreement import (
    Claims,
    disagreements_with_provider,
    disagreements_with_records,
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


def test_a_refund_must_be_one_we_asked_for_with_its_recorded_id():
    refund = claims("refund.succeeded", refund_id="re_1")
    assert disagreements_with_records(refund, payment("REFUND_PENDING", provider_refund_id="re_1")) == []
    assert disagreements_with_records(refund, payment("REFUND_PENDING", provider_refund_id="re_2")) == [
        "refund_id"
    ]
    assert disagreements_with_records(refund, payment("SUCCEEDED")) == ["refund_not_requested"]
    assert disagreements_with_records(refund, payment("REFUND_PENDING", provider_payment_id=None)) == [
        "provider_payment_id"
    ]


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
        ("refund.succeeded", Record(amount_refunded_cents=0), ["status"]),
        ("refund.succeeded", Record(amount_refunded_cents=1999), []),
    ],
)
def test_the_providers_record_must_name_our_payment_in_the_reported_state(event_type, record, fields):
    assert disagreements_with_provider(claims(event_type), payment("REFUND_PENDING"), record) == fields
