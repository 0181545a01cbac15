"""What happens to a locked order when its payment settles, its hold runs out or it is cancelled.

Each function takes an order already locked by the caller and changes status, payment and
stock together, so a step cannot, say, cancel an order and forget to release its stock. They
return what the provider still has to be told; the calling step enqueues that.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from models.clock import utcnow
from models.inventory import commit_holds, hold_lines, release_holds
from models.state import (
    HoldState,
    OrderStatus,
    PaymentStatus,
    Reason,
    move_payment,
    record_note,
    transition,
)
from models.tables import CartItem, Order, Payment


class FollowUp(Enum):
    """What the provider must still be told after a move."""

    NOTHING = "nothing"
    VOID = "void"  # give up a payment that may still be pending at the provider
    REFUND = "refund"  # give money back


async def _empty_cart(session: AsyncSession, order: Order) -> None:
    """A placed cart checkout takes its lines out of the customer's cart."""
    if order.source == "cart":
        await session.execute(delete(CartItem).where(CartItem.account_id == order.account_id,
                                                      CartItem.sku.in_([line.sku for line in order.lines])))


async def place(session: AsyncSession, order: Order, payment: Payment) -> None:
    """The payment succeeded while stock was held: sell the held stock and place the order."""
    if payment.status in (PaymentStatus.PENDING, PaymentStatus.CANCELLED):
        move_payment(payment, PaymentStatus.SUCCEEDED)
    await commit_holds(order)
    transition(order, OrderStatus.PLACED)
    await _empty_cart(session, order)


async def fail_payment(session: AsyncSession, order: Order, payment: Payment) -> None:
    """The payment failed while stock was held: cancel the order and give the stock back."""
    if payment.status == PaymentStatus.PENDING:
        move_payment(payment, PaymentStatus.FAILED)
    await release_holds(session, order)
    transition(order, OrderStatus.CANCELLED, Reason.PAYMENT_FAILED)


async def cancel_unpaid(session: AsyncSession, order: Order, reason: Reason) -> FollowUp:
    """Cancel an order not paid yet (hold expired or cancel request): stock back, payment given up."""
    await release_holds(session, order)
    transition(order, OrderStatus.CANCELLED, reason)
    payment = order.payment
    if payment is not None and payment.status == PaymentStatus.PENDING:
        move_payment(payment, PaymentStatus.CANCELLED)
        if payment.provider_payment_id:
            return FollowUp.VOID
    return FollowUp.NOTHING


async def cancel_paid(session: AsyncSession, order: Order, reason: Reason) -> FollowUp:
    """Cancel a placed order before shipping: its sold stock goes back and the payment is refunded."""
    await release_holds(session, order, states=(HoldState.HELD, HoldState.COMMITTED))
    transition(order, OrderStatus.CANCELLED, reason)
    payment = order.payment
    if payment is not None and payment.status == PaymentStatus.SUCCEEDED:
        move_payment(payment, PaymentStatus.REFUND_PENDING)
        return FollowUp.REFUND
    return FollowUp.NOTHING


async def late_payment(session: AsyncSession, order: Order, payment: Payment, policy: str) -> FollowUp:
    """A success arrived for an order no longer awaiting payment (cancelled, typically timed out).

    Under ``reinstate``, an order cancelled only because its hold ran out is placed again if all
    of its lines can be held again; everything else is refunded. The history says which.
    """
    move_payment(payment, PaymentStatus.SUCCEEDED)
    if policy == "reinstate" and order.reason == Reason.PAYMENT_TIMEOUT:
        shortage = await hold_lines(session, order, expires_at=utcnow())
        if shortage is None:
            await commit_holds(order)
            transition(order, OrderStatus.PLACED, note="late payment: reinstated")
            await _empty_cart(session, order)
            return FollowUp.NOTHING
        note = f"late payment: refunded ({shortage.reason.value}: {shortage.sku})"
    else:
        note = f"late payment: refunded (policy {policy}, order {order.reason or order.status})"
    move_payment(payment, PaymentStatus.REFUND_PENDING)
    record_note(order, note)
    return FollowUp.REFUND


def refund_settled(order: Order, payment: Payment) -> bool:
    """The provider confirmed the refund; False when it was already recorded."""
    if payment.status != PaymentStatus.REFUND_PENDING:
        return False
    move_payment(payment, PaymentStatus.REFUNDED)
    record_note(order, "payment refunded")
    return True
