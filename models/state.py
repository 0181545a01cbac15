"""The order and payment state machines: the only place that changes a status.

Every transition is checked against the table of legal moves (docs/contract.md, "Statuses") and appended
to the order's history. An illegal move raises :class:`IllegalTransition`, a domain error.

No step catches it. A step reads the order's status under the order's row lock before moving it
and returns when another step (or an earlier delivery) already moved it, so it only asks for legal
moves; an IllegalTransition out of a step is a bug: it propagates, the step's transaction rolls
back, and dramatiq retries the message until it is dead-lettered. The gateway's ship and deliver
endpoints catch it and answer 409.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from models.clock import utcnow

if TYPE_CHECKING:
    from models.tables import Order, Payment


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    PLACED = "PLACED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


class Reason(StrEnum):
    OUT_OF_STOCK = "out_of_stock"
    UNKNOWN_ITEM = "unknown_item"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_TIMEOUT = "payment_timeout"
    CUSTOMER_CANCELLED = "customer_cancelled"
    ADMIN_CANCELLED = "admin_cancelled"


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUND_PENDING = "REFUND_PENDING"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class RefundStatus(StrEnum):
    """One refund of a payment: asked for, then confirmed or refused by the provider."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ReturnStatus(StrEnum):
    """A return of delivered items: REQUESTED -> RECEIVED -> REFUNDED, or REQUESTED -> REJECTED."""

    REQUESTED = "REQUESTED"
    RECEIVED = "RECEIVED"
    REFUNDED = "REFUNDED"
    REJECTED = "REJECTED"


class HoldState(StrEnum):
    HELD = "HELD"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"


class NotificationStatus(StrEnum):
    """Where one customer email stands in its ledger row (``notifications.status``)."""

    PENDING = "PENDING"  # not sent: the last attempt failed for now, a retry comes
    SENDING = "SENDING"  # claimed by one delivery until ``claimed_until``
    SENT = "SENT"
    FAILED = "FAILED"  # given up: refused for good, out of retries, or no one to send it to


#: Statuses no step moves an order out of (a late payment may reinstate payment_timeout only).
FINAL_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.REJECTED})

_CANCELS = frozenset({Reason.CUSTOMER_CANCELLED, Reason.ADMIN_CANCELLED})

#: (from, to) -> reasons allowed on that move (None: the move carries no reason).
ORDER_TRANSITIONS: dict[tuple[OrderStatus, OrderStatus], frozenset[Reason | None]] = {
    (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT): frozenset({None}),
    (OrderStatus.PENDING, OrderStatus.REJECTED): frozenset({Reason.OUT_OF_STOCK, Reason.UNKNOWN_ITEM}),
    (OrderStatus.PENDING, OrderStatus.CANCELLED): _CANCELS,
    (OrderStatus.AWAITING_PAYMENT, OrderStatus.PLACED): frozenset({None}),
    (OrderStatus.AWAITING_PAYMENT, OrderStatus.CANCELLED): _CANCELS
    | {Reason.PAYMENT_FAILED, Reason.PAYMENT_TIMEOUT},
    (OrderStatus.PLACED, OrderStatus.SHIPPED): frozenset({None}),
    (OrderStatus.PLACED, OrderStatus.CANCELLED): _CANCELS,
    (OrderStatus.SHIPPED, OrderStatus.DELIVERED): frozenset({None}),
}

#: A late payment may bring back an order that was cancelled only because its hold ran out.
_REINSTATABLE_REASON = Reason.PAYMENT_TIMEOUT

PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELLED}
    ),
    # A provider may report success for a payment we asked it to cancel (the customer paid first).
    PaymentStatus.CANCELLED: frozenset({PaymentStatus.SUCCEEDED}),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.REFUND_PENDING}),
    # Where a refund leaves the payment: see :func:`payment_status_after_refunds` (a refused one
    # leaves it as it was before).
    PaymentStatus.REFUND_PENDING: frozenset(
        {PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED, PaymentStatus.SUCCEEDED}
    ),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset({PaymentStatus.REFUND_PENDING}),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}

#: Payment statuses in which money was captured (and so can be refunded, in whole or in part).
CAPTURED = frozenset(
    {
        PaymentStatus.SUCCEEDED,
        PaymentStatus.REFUND_PENDING,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    }
)

RETURN_TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    ReturnStatus.REQUESTED: frozenset({ReturnStatus.RECEIVED, ReturnStatus.REJECTED}),
    ReturnStatus.RECEIVED: frozenset({ReturnStatus.REFUNDED}),
    ReturnStatus.REFUNDED: frozenset(),
    ReturnStatus.REJECTED: frozenset(),
}


def payment_status_after_refunds(captured_cents: int, confirmed_cents: int, in_flight: int) -> PaymentStatus:
    """Where a captured payment stands given its refunds: REFUND_PENDING while any is in flight,
    REFUNDED once the confirmed ones add up to what was captured, PARTIALLY_REFUNDED before."""
    if in_flight:
        return PaymentStatus.REFUND_PENDING
    if confirmed_cents >= captured_cents:
        return PaymentStatus.REFUNDED
    return PaymentStatus.PARTIALLY_REFUNDED if confirmed_cents else PaymentStatus.SUCCEEDED


class DomainError(Exception):
    """A business rule refused an operation."""


class IllegalTransition(DomainError):
    """The requested status change is not a legal move from the current status."""

    def __init__(self, kind: str, current: str, target: str, reason: str | None = None):
        self.current, self.target, self.reason = current, target, reason
        why = f" ({reason})" if reason else ""
        super().__init__(f"{kind} cannot move from {current} to {target}{why}")


def can_transition(
    current: str, target: str, reason: str | None = None, current_reason: str | None = None
) -> bool:
    """Tell whether an order in ``current`` (cancelled for ``current_reason``) may move to ``target``."""
    if (current, target) == (OrderStatus.CANCELLED, OrderStatus.PLACED):
        return current_reason == _REINSTATABLE_REASON and reason is None
    allowed = ORDER_TRANSITIONS.get((OrderStatus(current), OrderStatus(target)))
    return allowed is not None and reason in allowed


def require_transition(
    current: str, target: OrderStatus, reason: Reason | None = None, current_reason: str | None = None
) -> None:
    """Raise :class:`IllegalTransition` unless an order in ``current`` may move to ``target``."""
    if not can_transition(current, target, reason, current_reason):
        raise IllegalTransition("order", current, target, reason)


def require_payment_move(current: str, target: PaymentStatus) -> None:
    """Raise :class:`IllegalTransition` unless a payment in ``current`` may move to ``target``."""
    if target not in PAYMENT_TRANSITIONS[PaymentStatus(current)]:
        raise IllegalTransition("payment", current, target)


def require_return_move(current: str, target: ReturnStatus) -> None:
    """Raise :class:`IllegalTransition` unless a return in ``current`` may move to ``target``."""
    if target not in RETURN_TRANSITIONS[ReturnStatus(current)]:
        raise IllegalTransition("return", current, target)


def transition(
    order: Order, target: OrderStatus, reason: Reason | None = None, note: str | None = None
) -> None:
    """Move ``order`` to ``target`` and record the move in its history.

    Raises :class:`IllegalTransition` when the move is not in the table.
    """
    from models.tables import OrderHistory

    require_transition(order.status, target, reason, order.reason)
    now = utcnow()
    order._status = target.value
    order.reason = reason.value if reason else None
    order.updated_at = now
    order.history.append(OrderHistory(status=target.value, reason=order.reason, note=note, at=now))


def record_note(order: Order, note: str) -> None:
    """Append a history entry that keeps the status (e.g. a refund of a late payment)."""
    from models.tables import OrderHistory

    order.history.append(OrderHistory(status=order.status, reason=order.reason, note=note, at=utcnow()))


def move_payment(payment: Payment, target: PaymentStatus) -> None:
    """Move ``payment`` to ``target``; raises :class:`IllegalTransition` on an illegal move."""
    require_payment_move(payment.status, target)
    payment._status = target.value
    payment.updated_at = utcnow()
