"""The chaos run's email verdict: one email per order and announced event, or a violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from bench.faults.emails import REFUND_NOTE, Arrival, LedgerEntry, expected_emails, judge_emails
from models.tables import Order, OrderHistory, Payment

T0 = datetime(2024, 5, 1, 12, 0, 0)
LOAD_ENDED_AT = (T0 + timedelta(seconds=60)).replace(tzinfo=UTC).timestamp()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def epoch(seconds: float) -> float:
    return at(seconds).replace(tzinfo=UTC).timestamp()


def order(
    order_id: str, status: str, steps: list[tuple[str, float, str | None]], payment_status: str | None = None
) -> Order:
    made = Order(id=order_id, _status=status, total_cents=1000, currency="USD")
    made.history = [OrderHistory(status=s, at=at(t), note=note) for s, t, note in steps]
    made.payments = [Payment(_status=payment_status, attempt=1)] if payment_status else []
    return made


def fleet_orders() -> list[Order]:
    return [
        order("placed", "PLACED", [("PENDING", 0, None), ("PLACED", 1, None)], "SUCCEEDED"),
        order(
            "refunded",
            "CANCELLED",
            [
                ("PENDING", 0, None),
                ("PLACED", 2, None),
                ("CANCELLED", 3, None),
                ("CANCELLED", 5, REFUND_NOTE),
            ],
            "REFUNDED",
        ),
        order("rejected", "REJECTED", [("PENDING", 0, None), ("REJECTED", 70, None)], "FAILED"),
        order("pending", "PENDING", [("PENDING", 0, None)]),
    ]


EXPECTED_KEYS = {
    ("placed", "order.placed"),
    ("refunded", "order.placed"),
    ("refunded", "order.cancelled"),
    ("refunded", "order.refunded"),
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
    assert expected[("refunded", "order.refunded")] == epoch(5)


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
    arrivals = [a for a in exactly_once() if (a.order_id, a.event) != ("refunded", "order.refunded")]
    findings = judge_emails(expected_emails(fleet_orders()), arrivals, sent_ledger(), LOAD_ENDED_AT, orders=4)
    assert findings.figures["emails missing"] == 1
    [violation] = findings.violations
    assert "1 of 5 expected emails never arrived" in violation and "refunded order.refunded" in violation


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
