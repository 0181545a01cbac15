"""The enums whose values are stored in the database and logged keep their strings."""

from __future__ import annotations

from actors.settle import SettleOutcome
from models.state import NotificationStatus, OrderStatus


def test_notification_statuses_are_the_stored_strings():
    assert [status.value for status in NotificationStatus] == ["PENDING", "SENDING", "SENT", "FAILED"]
    assert NotificationStatus.SENT == "SENT" and f"{NotificationStatus.SENT}" == "SENT"


def test_settle_outcomes_are_the_stored_strings():
    assert {outcome.value for outcome in SettleOutcome} == {
        "placed",
        "cancelled_payment_failed",
        "refunded",
        "late_payment_reinstated",
        "late_payment_refunding",
        "replaced_payment_refunding",
        "already_placed",
        "already_refunded",
        *(f"ignored_in_{status.lower()}" for status in OrderStatus),
        "mismatch",
        "unknown_payment",
        "unhandled_type",
    }
    assert SettleOutcome.UNKNOWN_PAYMENT == "unknown_payment" and f"{SettleOutcome.PLACED}" == "placed"


def test_every_order_status_has_its_ignored_outcome():
    for status in OrderStatus:
        assert SettleOutcome.ignored_in(status) == f"ignored_in_{status.lower()}"
