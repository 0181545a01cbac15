"""Turning what a move left for the provider into the message that will tell it."""

from __future__ import annotations

from messaging.queues import REFUND, VOID
from models.order_flow import FollowUp
from models.order_record import OrderRecord
from models.unit_of_work import UnitOfWork


def enqueue_follow_up(uow: UnitOfWork, order: OrderRecord, follow_up: FollowUp) -> None:
    """Enqueue `void` or `refund` for the order's current payment, in the caller's transaction."""
    payment = order.payment
    if follow_up is FollowUp.VOID and payment is not None:
        uow.enqueue(VOID, order_id=order.id, payment_id=payment.id)
    elif follow_up is FollowUp.REFUND and payment is not None:
        uow.enqueue(REFUND, order_id=order.id, payment_id=payment.id)
