"""Repeatable events (an address changed twice, two refunds) are separate emails to a mailbox:
each occurrence has a Message-ID of its own, while every copy of one occurrence keeps the same."""

from __future__ import annotations

from providers.emails import compose

ORDER = dict(
    order_id="b" * 32,
    reason=None,
    total_cents=900,
    currency="USD",
    lines=[(1, "SKU-1")],
    email="ada@example.com",
    name="Ada",
    event="order.updated",
    sender="Shop <orders@shop.example>",
)


def test_each_occurrence_has_its_own_message_id_and_a_repeat_the_same():
    first = compose(**ORDER, occurrence="1" * 32)
    again = compose(**ORDER, occurrence="1" * 32)
    second = compose(**ORDER, occurrence="2" * 32)

    assert first.message_id == again.message_id
    assert first.message_id != second.message_id
    assert first.message_id == f"<{'b' * 32}.order.updated.{'1' * 32}@shop.example>"
    assert f"Message-ID: {first.message_id}\r\n".encode() in first.data


def test_an_event_without_occurrences_keeps_its_message_id():
    assert compose(**ORDER).message_id == f"<{'b' * 32}.order.updated@shop.example>"
