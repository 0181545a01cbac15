"""Every legal order move succeeds and records history; every other move raises."""

from __future__ import annotations

import itertools

import pytest

from models.state import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    IllegalTransition,
    OrderStatus,
    PaymentStatus,
    Reason,
    move_payment,
    transition,
)
from models.tables import Order, Payment

REASONS: list[Reason | None] = [None, *Reason]


def make_order(status: OrderStatus, reason: Reason | None = None) -> Order:
    order = Order(
        _status=status.value, reason=reason.value if reason else None, total_cents=0, currency="USD"
    )
    order.history = []
    return order


LEGAL = [
    (current, target, reason)
    for (current, target), reasons in ORDER_TRANSITIONS.items()
    for reason in reasons
]


@pytest.mark.parametrize(("current", "target", "reason"), LEGAL)
def test_legal_transition_moves_and_records_history(current, target, reason):
    order = make_order(current)
    transition(order, target, reason)
    assert order.status == target
    assert order.reason == (reason.value if reason else None)
    assert [(h.status, h.reason) for h in order.history] == [(target.value, order.reason)]


ILLEGAL = [
    (current, target, reason)
    for current, target, reason in itertools.product(OrderStatus, OrderStatus, REASONS)
    if reason not in ORDER_TRANSITIONS.get((current, target), frozenset())
    and (current, target) != (OrderStatus.CANCELLED, OrderStatus.PLACED)
]


@pytest.mark.parametrize(("current", "target", "reason"), ILLEGAL)
def test_illegal_transition_raises_and_changes_nothing(current, target, reason):
    order = make_order(current)
    with pytest.raises(IllegalTransition):
        transition(order, target, reason)
    assert order.status == current
    assert order.history == []


def test_late_payment_reinstates_only_a_timed_out_order():
    timed_out = make_order(OrderStatus.CANCELLED, Reason.PAYMENT_TIMEOUT)
    transition(timed_out, OrderStatus.PLACED, note="late payment reinstated")
    assert timed_out.status == OrderStatus.PLACED and timed_out.reason is None
    assert timed_out.history[-1].note == "late payment reinstated"
    for reason in set(Reason) - {Reason.PAYMENT_TIMEOUT}:
        with pytest.raises(IllegalTransition):
            transition(make_order(OrderStatus.CANCELLED, reason), OrderStatus.PLACED)


def test_final_statuses_have_no_way_out_but_reinstatement():
    for status in (OrderStatus.DELIVERED, OrderStatus.REJECTED):
        assert not any(current == status for current, _ in ORDER_TRANSITIONS)


def test_status_cannot_be_assigned_directly():
    order = make_order(OrderStatus.PENDING)
    with pytest.raises(AttributeError):
        order.status = OrderStatus.PLACED  # type: ignore[misc]


@pytest.mark.parametrize(("current", "target"), list(itertools.product(PaymentStatus, PaymentStatus)))
def test_payment_moves_follow_the_table(current, target):
    payment = Payment(_status=current.value, amount_cents=1, currency="USD", method="token")
    if target in PAYMENT_TRANSITIONS[current]:
        move_payment(payment, target)
        assert payment.status == target
    else:
        with pytest.raises(IllegalTransition):
            move_payment(payment, target)
        assert payment.status == current
