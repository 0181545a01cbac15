"""The chaos run's money verdict: the provider's books against themselves and against ours."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bench.faults.money import ProviderPayment, ProviderRefund, judge_money
from bench.faults.records import OrderRecords, RefundRow, ReturnRow
from models.tables import Order, Payment

T0 = datetime(2024, 5, 1, 12, 0, 0)


def records(
    status: str, payments: list[tuple[str, str]], refunds: Sequence[tuple[str, str, int, str]] = ()
) -> OrderRecords:
    """An order of ours: (payment id, status) per attempt; (refund id, payment id, cents, status)
    per refund."""
    order = Order(id="o1", _status=status, total_cents=1000, currency="USD")
    order.payments = [
        Payment(id=pid, _status=pstatus, attempt=n, amount_cents=1000)
        for n, (pid, pstatus) in enumerate(payments, 1)
    ]
    return OrderRecords(
        order,
        [RefundRow(rid, "o1", pid, cents, rstatus, None, None, T0) for rid, pid, cents, rstatus in refunds],
    )


def charged(our_id: str, *refunds: tuple[str, int], status: str = "succeeded") -> ProviderPayment:
    """The provider's payment for our payment ``our_id``, with (our refund id, cents) per refund."""
    return ProviderPayment(
        id=f"pay_{our_id}",
        our_payment_id=our_id,
        status=status,
        amount_cents=1000,
        refunds=tuple(ProviderRefund(f"re_{n}", cents, rid) for n, (rid, cents) in enumerate(refunds)),
    )


def test_a_sale_refunded_in_parts_that_both_books_agree_on_passes():
    ours = records(
        "PLACED",
        [("p1", "PARTIALLY_REFUNDED")],
        [("r1", "p1", 300, "SUCCEEDED"), ("r2", "p1", 200, "SUCCEEDED")],
    )
    findings = judge_money({"o1": ours}, {"o1": [charged("p1", ("r1", 300), ("r2", 200))]})
    assert findings.violations == []
    assert findings.figures["provider: charges / refunds / cents refunded"] == "1 / 2 / 500"
    assert findings.figures["provider: orders with refunds in several parts"] == 1


def test_refunding_more_than_was_captured_is_a_violation():
    ours = records(
        "PLACED", [("p1", "REFUNDED")], [("r1", "p1", 800, "SUCCEEDED"), ("r2", "p1", 800, "SUCCEEDED")]
    )
    findings = judge_money({"o1": ours}, {"o1": [charged("p1", ("r1", 800), ("r2", 800))]})
    assert any(
        "refunded more than it captured" in v and "1600 refunded of 1000" in v for v in findings.violations
    )


def test_two_charges_kept_is_a_violation():
    ours = records("PLACED", [("p1", "SUCCEEDED"), ("p2", "SUCCEEDED")])
    findings = judge_money({"o1": ours}, {"o1": [charged("p1"), charged("p2")]})
    assert any("keep more than one charge" in v for v in findings.violations)


def test_a_replaced_attempt_refunded_whole_is_counted_not_a_violation():
    ours = records("PLACED", [("p1", "REFUNDED"), ("p2", "SUCCEEDED")], [("p1", "p1", 1000, "SUCCEEDED")])
    findings = judge_money({"o1": ours}, {"o1": [charged("p1", ("p1", 1000)), charged("p2")]})
    assert findings.violations == []
    assert findings.figures["replaced attempts that succeeded anyway, refunded"] == 1


def test_a_cancelled_order_keeping_its_charge_is_a_violation():
    ours = records("CANCELLED", [("p1", "PARTIALLY_REFUNDED")], [("r1", "p1", 400, "SUCCEEDED")])
    findings = judge_money({"o1": ours}, {"o1": [charged("p1", ("r1", 400))]})
    assert any(
        "ended without a sale but keep a charge" in v and "600 cents" in v for v in findings.violations
    )


def test_a_sale_the_order_flow_refunded_though_nobody_asked_is_a_violation():
    ours = records("PLACED", [("p1", "REFUNDED")], [("p1", "p1", 1000, "SUCCEEDED")])
    findings = judge_money({"o1": ours}, {"o1": [charged("p1", ("p1", 1000))]})
    assert any("refunded by the order flow" in v for v in findings.violations)


def test_a_sale_the_operator_refunded_whole_passes():
    ours = records("PLACED", [("p1", "REFUNDED")], [("r1", "p1", 1000, "SUCCEEDED")])
    assert judge_money({"o1": ours}, {"o1": [charged("p1", ("r1", 1000))]}).violations == []


def test_our_confirmed_refunds_differing_from_the_providers_is_a_violation():
    ours = records(
        "PLACED",
        [("p1", "PARTIALLY_REFUNDED")],
        [("r1", "p1", 300, "SUCCEEDED"), ("r2", "p1", 200, "FAILED")],
    )
    findings = judge_money({"o1": ours}, {"o1": [charged("p1", ("r1", 300), ("r2", 200))]})
    [violation] = findings.violations
    assert "disagree with the provider's books" in violation
    assert (
        "add up to 300, the provider refunded 500" in violation
        and "none of our confirmed refunds" in violation
    )


def test_one_refund_of_ours_made_twice_at_the_provider_is_a_violation():
    ours = records("PLACED", [("p1", "PARTIALLY_REFUNDED")], [("r1", "p1", 300, "SUCCEEDED")])
    findings = judge_money({"o1": ours}, {"o1": [charged("p1", ("r1", 300), ("r1", 300))]})
    assert any("our refund r1 made 2 times" in v for v in findings.violations)


def test_a_charge_the_provider_took_but_our_records_do_not_show_is_a_violation():
    ours = records("CANCELLED", [("p1", "CANCELLED")])
    findings = judge_money({"o1": ours}, {"o1": [charged("p1")]})
    assert any("p1: CANCELLED in ours, succeeded at the provider" in v for v in findings.violations)


def test_orders_not_settled_yet_are_left_to_the_settling_check():
    ours = records("DELIVERED", [("p1", "PARTIALLY_REFUNDED")], [("r1", "p1", 300, "SUCCEEDED")])
    ours.returns = [ReturnRow("ret1", "o1", "RECEIVED", True, T0)]
    assert ours.unsettled() == "return RECEIVED, awaiting its refund"
    # The provider already refunded more than we recorded: not judged until the order settles.
    assert judge_money({"o1": ours}, {"o1": [charged("p1", ("r1", 300), ("r9", 500))]}).violations == []
