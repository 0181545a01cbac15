"""The chaos run's email verdict: one email per order and announced event occurrence, or a violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from bench.faults.emails import Arrival, LedgerEntry, expected_emails, judge_emails
from bench.faults.records import OrderRecords, RefundRow, ReturnRow
from models.tables import Order, OrderHistory, Payment
from providers.emails import compose

T0 = datetime(2024, 5, 1, 12, 0, 0)
LOAD_ENDED_AT = (T0 + timedelta(seconds=60)).replace(tzinfo=UTC).timestamp()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def epoch(seconds: float) -> float:
    return at(seconds).replace(tzinfo=UTC).timestamp()


def order(
    order_id: str,
    status: str,
    steps: list[tuple[str, float, str | None]],
    payment_status: str | None = None,
    refunds: tuple[RefundRow, ...] = (),
) -> OrderRecords:
    made = Order(id=order_id, _status=status, total_cents=1000, currency="USD")
    made.history = [OrderHistory(status=s, at=at(t), note=note) for s, t, note in steps]
    made.payments = (
        [Payment(id=f"{order_id}-p1", _status=payment_status, attempt=1)] if payment_status else []
    )
    return OrderRecords(made, list(refunds))


def refund(order_id: str, refund_id: str, seconds: float, status: str = "SUCCEEDED") -> RefundRow:
    return RefundRow(refund_id, order_id, f"{order_id}-p1", 500, status, None, None, at(seconds))


def fleet_orders() -> list[OrderRecords]:
    return [
        order("placed", "PLACED", [("PENDING", 0, None), ("PLACED", 1, None)], "SUCCEEDED"),
        order(
            "refunded",
            "CANCELLED",
            [
                ("PENDING", 0, None),
                ("PLACED", 2, None),
                ("CANCELLED", 3, None),
                ("CANCELLED", 5, "refund of 1000 cents confirmed"),
            ],
            "REFUNDED",
            (refund("refunded", "refunded-p1", 5),),
        ),
        order("rejected", "REJECTED", [("PENDING", 0, None), ("REJECTED", 70, None)], "FAILED"),
        order("pending", "PENDING", [("PENDING", 0, None)]),
    ]


EXPECTED_KEYS = {
    ("placed", "order.placed"),
    ("refunded", "order.placed"),
    ("refunded", "order.cancelled"),
    ("refunded", "order.refunded:refunded-p1"),
    ("rejected", "order.rejected"),
}


def exactly_once(lateness: float = 2.0) -> list[Arrival]:
    return [
        Arrival(order_id, event, happened + lateness)
        for (order_id, event), happened in expected_emails(fleet_orders()).items()
    ]


def sent_ledger() -> dict:
    return {key: LedgerEntry("SENT") for key in EXPECTED_KEYS}


def test_expected_emails_follow_the_history_and_refunds():
    expected = expected_emails(fleet_orders())
    assert set(expected) == EXPECTED_KEYS
    assert expected[("refunded", "order.cancelled")] == epoch(3)
    assert expected[("refunded", "order.refunded:refunded-p1")] == epoch(5)


def test_exactly_one_email_each_passes_and_reports_lateness():
    findings = judge_emails(
        expected_emails(fleet_orders()), exactly_once(), sent_ledger(), LOAD_ENDED_AT, orders=4
    )
    assert findings.violations == []
    assert findings.figures["emails expected (from order history)"] == 5
    assert findings.figures["emails received"] == 5
    assert findings.figures["emails missing"] == 0
    assert findings.figures["duplicate emails"] == 0
    assert findings.figures["email lateness p50 / p95 / max (s)"] == "2.0 / 2.0 / 2.0 (5 emails)"
    assert findings.figures["email lateness, transitions during the load (s)"].endswith("(4 emails)")
    assert findings.figures["email lateness, transitions after the load (s)"].endswith("(1 emails)")


def test_a_missing_email_is_a_violation():
    arrivals = [a for a in exactly_once() if a.key != ("refunded", "order.refunded:refunded-p1")]
    findings = judge_emails(expected_emails(fleet_orders()), arrivals, sent_ledger(), LOAD_ENDED_AT, orders=4)
    assert findings.figures["emails missing"] == 1
    [violation] = findings.violations
    assert "1 of 5 expected emails never arrived" in violation and "refunded order.refunded:" in violation


def test_a_duplicate_email_is_a_violation():
    arrivals = exactly_once() + [Arrival("placed", "order.placed", epoch(30))]
    findings = judge_emails(expected_emails(fleet_orders()), arrivals, sent_ledger(), LOAD_ENDED_AT, orders=4)
    assert findings.figures["duplicate emails"] == 1
    [violation] = findings.violations
    assert "arrived more than once" in violation and "placed order.placed" in violation


def test_a_copy_sent_again_after_a_claim_was_taken_over_is_counted_not_failed():
    # The first delivery died after the mail server took the email, before marking it SENT.
    arrivals = exactly_once() + [Arrival("placed", "order.placed", epoch(80))]
    ledger = {**sent_ledger(), ("placed", "order.placed"): LedgerEntry("SENT", attempts=2)}
    findings = judge_emails(expected_emails(fleet_orders()), arrivals, ledger, LOAD_ENDED_AT, orders=4)
    assert findings.figures["re-sent after an interrupted delivery (same Message-ID)"] == 1
    assert findings.figures["duplicate emails"] == 0
    assert findings.violations == []


def test_no_email_at_all_for_n_orders_is_a_violation():
    findings = judge_emails(expected_emails(fleet_orders()), [], {}, LOAD_ENDED_AT, orders=4)
    assert findings.figures["emails received"] == 0
    assert findings.figures["emails missing"] == 5
    assert any(
        "5 of 5 expected emails never arrived (ledger: no ledger row 5)" in v for v in findings.violations
    )


def test_orders_announcing_nothing_is_a_violation():
    findings = judge_emails({}, [], {}, LOAD_ENDED_AT, orders=3)
    assert findings.violations == ["3 orders but their history announces no email at all"]


def test_a_failed_or_unfinished_ledger_row_is_a_violation():
    ledger = sent_ledger()
    ledger[("rejected", "order.rejected")] = LedgerEntry("FAILED", "550 mailbox unavailable")
    ledger[("placed", "order.placed")] = LedgerEntry("SENDING")
    findings = judge_emails(expected_emails(fleet_orders()), exactly_once(), ledger, LOAD_ENDED_AT, orders=4)
    assert findings.figures["emails FAILED in the ledger"] == 1
    assert any(
        "1 emails recorded FAILED" in v and "550 mailbox unavailable" in v for v in findings.violations
    )
    assert any("1 ledger rows never finished (SENDING 1)" in v for v in findings.violations)


def test_an_email_for_no_transition_is_a_violation():
    arrivals = exactly_once() + [Arrival("placed", "order.shipped", epoch(9)), Arrival(None, None, epoch(9))]
    findings = judge_emails(expected_emails(fleet_orders()), arrivals, sent_ledger(), LOAD_ENDED_AT, orders=4)
    assert findings.figures["unexpected emails"] == 2
    assert any("2 emails for no transition" in v for v in findings.violations)


def test_lateness_is_split_by_when_the_transition_happened():
    expected = expected_emails(fleet_orders())
    arrivals = [
        Arrival(o, e, happened + (30.0 if happened <= LOAD_ENDED_AT else 1.0))
        for (o, e), happened in expected.items()
    ]
    figures = judge_emails(expected, arrivals, sent_ledger(), LOAD_ENDED_AT, orders=4).figures
    assert figures["email lateness, transitions during the load (s)"] == "30.0 / 30.0 / 30.0 (4 emails)"
    assert figures["email lateness, transitions after the load (s)"] == "1.0 / 1.0 / 1.0 (1 emails)"


def test_arrival_reads_the_order_headers():
    message = EmailMessage()
    message["X-Order-Id"], message["X-Order-Event"] = "abc", "order.placed"
    assert Arrival.of(12.5, message) == Arrival("abc", "order.placed", 12.5)


def composed(event: str, occurrence: str | None = None) -> EmailMessage:
    """An email exactly as the fleet writes it, parsed back as the chaos run reads the sink's files."""
    email = compose(
        order_id="a" * 32,
        reason=None,
        total_cents=900,
        currency="USD",
        lines=[(1, "SKU-1")],
        email="ada@example.com",
        name="Ada",
        event=event,
        sender="Shop <orders@shop.example>",
        occurrence=occurrence,
    )
    return BytesParser(policy=policy.default).parsebytes(email.data, headersonly=True)


def test_arrival_reads_the_occurrence_from_the_message_id():
    # The longest event name, whose Message-ID is folded onto a line of its own.
    returned = Arrival.of(1.0, composed("order.return_requested", "r" * 32))
    assert returned == Arrival("a" * 32, f"order.return_requested:{'r' * 32}", 1.0)
    assert Arrival.of(1.0, composed("order.refunded", "f" * 32)).event == f"order.refunded:{'f' * 32}"
    assert Arrival.of(1.0, composed("order.placed")).event == "order.placed"


def after_sale_order() -> OrderRecords:
    """Refunded twice (a third refused), paid a second way, moved twice, two returns (one received)."""
    records = order(
        "busy",
        "DELIVERED",
        [
            ("PENDING", 0, None),
            ("AWAITING_PAYMENT", 1, None),
            ("AWAITING_PAYMENT", 2, "address_changed"),
            ("AWAITING_PAYMENT", 3, "payment_changed"),
            ("PLACED", 4, None),
            ("PLACED", 5, "address_changed"),
            ("SHIPPED", 6, None),
            ("DELIVERED", 7, None),
        ],
        "CANCELLED",
        (refund("busy", "r1", 8), refund("busy", "r2", 9), refund("busy", "r3", 10, status="FAILED")),
    )
    records.order.payments.append(
        Payment(id="busy-p2", _status="PARTIALLY_REFUNDED", attempt=2, created_at=at(3))
    )
    records.returns = [
        ReturnRow("ret1", "busy", "REFUNDED", True, at(8)),
        ReturnRow("ret2", "busy", "REJECTED", None, at(9)),
    ]
    return records


AFTER_SALE_KEYS = {
    ("busy", "order.placed"),
    ("busy", "order.shipped"),
    ("busy", "order.delivered"),
    ("busy", "order.refunded:r1"),
    ("busy", "order.refunded:r2"),
    ("busy", "order.updated:busy-p2"),
    ("busy", "order.return_requested:ret1"),
    ("busy", "order.return_received:ret1"),
    ("busy", "order.return_requested:ret2"),
}


def test_each_refund_payment_change_address_change_and_return_is_an_email_of_its_own():
    expected = expected_emails([after_sale_order()])
    named = {key for key in expected if ":?" not in key[1]}
    assert named == AFTER_SALE_KEYS
    # The address changes' occurrences are fresh ids recorded nowhere else: counted, not named.
    assert sorted(key for key in expected if ":?" in key[1]) == [
        ("busy", "order.updated:?1"),
        ("busy", "order.updated:?2"),
    ]
    assert expected[("busy", "order.refunded:r2")] == epoch(9)
    assert expected[("busy", "order.updated:?2")] == epoch(5)


def busy_arrivals(address_changes: int) -> list[Arrival]:
    arrivals = [Arrival(order_id, event, epoch(20)) for order_id, event in AFTER_SALE_KEYS]
    return arrivals + [
        Arrival("busy", f"order.updated:addr{n}", epoch(20 + n)) for n in range(address_changes)
    ]


def busy_ledger(arrivals: list[Arrival]) -> dict:
    return {arrival.key: LedgerEntry("SENT") for arrival in arrivals}


def judged(arrivals: list[Arrival]):
    return judge_emails(
        expected_emails([after_sale_order()]), arrivals, busy_ledger(arrivals), LOAD_ENDED_AT, orders=1
    )


def test_one_email_per_occurrence_passes():
    findings = judged(busy_arrivals(address_changes=2))
    assert findings.violations == []
    assert findings.figures["emails expected (from order history)"] == 11
    assert findings.figures["emails received"] == 11


def test_a_missing_address_change_email_is_a_violation():
    findings = judged(busy_arrivals(address_changes=1))
    assert findings.figures["emails missing"] == 1
    [violation] = findings.violations
    assert "1 of 11 expected emails never arrived" in violation and "busy order.updated:?2" in violation


def test_an_address_change_email_too_many_is_unexpected():
    findings = judged(busy_arrivals(address_changes=3))
    assert findings.figures["unexpected emails"] == 1
    [violation] = findings.violations
    assert "1 emails for no transition" in violation and "busy order.updated:addr2" in violation


def test_a_second_copy_of_one_refund_email_is_a_duplicate():
    arrivals = busy_arrivals(address_changes=2)
    findings = judged([*arrivals, Arrival("busy", "order.refunded:r1", epoch(40))])
    assert findings.figures["duplicate emails"] == 1
    [violation] = findings.violations
    assert "arrived more than once" in violation and "busy order.refunded:r1" in violation


def test_a_second_copy_of_one_address_change_email_is_a_duplicate():
    arrivals = busy_arrivals(address_changes=2)
    findings = judged([*arrivals, Arrival("busy", "order.updated:addr0", epoch(40))])
    assert findings.figures["duplicate emails"] == 1
    assert findings.figures["emails missing"] == 0
