"""Turning what a move left for the provider into the message that will tell it."""

from __future__ import annotations

from messaging.queues import REFUND, VOID
from models.order_flow import FollowUp
from models.order_record import OrderRecord, PaymentRecord
from models.unit_of_work import UnitOfWork


def enqueue_follow_up(
    uow: UnitOfWork, order: OrderRecord, follow_up: FollowUp, payment: PaymentRecord | None = None
) -> None:
    """Enqueue `void` or `refund` for ``payment`` (default: the order's current one), in the caller's
    transaction. The order flow's refund of a payment is filed under the payment's id."""
    payment = payment or order.payment
    if follow_up is FollowUp.VOID and payment is not None:
        uow.enqueue(VOID, order_id=order.id, payment_id=payment.id)
    elif follow_up is FollowUp.REFUND and payment is not None:
        uow.enqueue(REFUND, order_id=order.id, payment_id=payment.id, refund_id=payment.id)
