"""What happens to a locked order when its payment settles: the moves that go together.

Each function takes an order already locked by the caller and changes status, payment and
stock in one go, so a step cannot, say, cancel an order and forget to release its stock.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from models.inventory import commit_holds, release_holds
from models.state import OrderStatus, PaymentStatus, Reason, move_payment, transition
from models.tables import Order, Payment


async def place(order: Order, payment: Payment) -> None:
    """The payment succeeded while stock was held: sell the held stock and place the order."""
    if payment.status in (PaymentStatus.PENDING, PaymentStatus.CANCELLED):
        move_payment(payment, PaymentStatus.SUCCEEDED)
    await commit_holds(order)
    transition(order, OrderStatus.PLACED)


async def fail_payment(session: AsyncSession, order: Order, payment: Payment) -> None:
    """The payment failed while stock was held: cancel the order and give the stock back."""
    if payment.status == PaymentStatus.PENDING:
        move_payment(payment, PaymentStatus.FAILED)
    await release_holds(session, order)
    transition(order, OrderStatus.CANCELLED, Reason.PAYMENT_FAILED)
