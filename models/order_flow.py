"""What happens to a locked order when its payment settles, its hold runs out or it is cancelled.

Each function takes an order the caller locked in its unit of work (:meth:`UnitOfWork.lock_order`)
and changes status, payment and stock together, so a step cannot, say, cancel an order and
forget to release its stock. They return what the provider still has to be told; the calling
step enqueues that.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete

from models.clock import utcnow
from models.inventory import add_holds, commit_holds, line_quantities, release_holds, shortage_of, take_stock
from models.order_moves import add_note, move_order, move_payment
from models.order_record import OrderRecord, PaymentRecord
from models.refunds import refundable_cents, start_refund
from models.state import CAPTURED, HoldState, OrderStatus, PaymentStatus, Reason
from models.tables import CartItem, table_of

if TYPE_CHECKING:
    from models.unit_of_work import UnitOfWork

_cart = table_of(CartItem)


class FollowUp(Enum):
    """What the provider must still be told after a move."""

    NOTHING = "nothing"
    VOID = "void"  # give up a payment that may still be pending at the provider
    REFUND = "refund"  # give money back: the refund filed under the payment's own id


async def refund_whole(uow: UnitOfWork, order: OrderRecord, payment: PaymentRecord, reason: str) -> FollowUp:
    """Refund what is left of ``payment`` as the order flow's own refund of it (its id is the
    payment's, so it exists once); FollowUp.NOTHING when nothing is left to refund."""
    if payment.status not in CAPTURED or not await refundable_cents(await uow.connection(), payment):
        return FollowUp.NOTHING
    await start_refund(uow, order, payment, reason=reason, refund_id=payment.id)
    return FollowUp.REFUND


async def _empty_cart(uow: UnitOfWork, order: OrderRecord) -> None:
    """A placed cart checkout takes its lines out of the customer's cart."""
    if order.source == "cart":
        connection = await uow.connection()
        await connection.execute(
            delete(_cart).where(
                _cart.c.account_id == order.account_id, _cart.c.sku.in_([line.sku for line in order.lines])
            )
        )


async def place(uow: UnitOfWork, order: OrderRecord, payment: PaymentRecord, **payment_columns: Any) -> None:
    """The payment succeeded while stock was held: sell the held stock and place the order.

    ``payment_columns`` are written with the payment's move (e.g. the provider's id).
    """
    if payment.status in (PaymentStatus.PENDING, PaymentStatus.CANCELLED):
        await move_payment(uow, payment, PaymentStatus.SUCCEEDED, **payment_columns)
    await commit_holds(await uow.connection(), order)
    await move_order(uow, order, OrderStatus.PLACED)
    await _empty_cart(uow, order)


async def fail_payment(
    uow: UnitOfWork, order: OrderRecord, payment: PaymentRecord, **payment_columns: Any
) -> None:
    """The payment failed while stock was held: cancel the order and give the stock back."""
    if payment.status == PaymentStatus.PENDING:
        await move_payment(uow, payment, PaymentStatus.FAILED, **payment_columns)
    await release_holds(await uow.connection(), order)
    await move_order(uow, order, OrderStatus.CANCELLED, Reason.PAYMENT_FAILED)


async def cancel_unpaid(uow: UnitOfWork, order: OrderRecord, reason: Reason) -> FollowUp:
    """Cancel an order not paid yet (hold expired or cancel request): stock back, payment given up."""
    await release_holds(await uow.connection(), order)
    await move_order(uow, order, OrderStatus.CANCELLED, reason)
    payment = order.payment
    if payment is not None and payment.status == PaymentStatus.PENDING:
        await move_payment(uow, payment, PaymentStatus.CANCELLED)
        if payment.provider_payment_id:
            return FollowUp.VOID
    return FollowUp.NOTHING


async def cancel_paid(uow: UnitOfWork, order: OrderRecord, reason: Reason) -> FollowUp:
    """Cancel a placed order before shipping: its sold stock goes back and the payment is refunded."""
    await release_holds(await uow.connection(), order, states=(HoldState.HELD, HoldState.COMMITTED))
    await move_order(uow, order, OrderStatus.CANCELLED, reason)
    payment = order.payment
    if payment is None:
        return FollowUp.NOTHING
    return await refund_whole(uow, order, payment, reason.value)


async def late_payment(
    uow: UnitOfWork, order: OrderRecord, payment: PaymentRecord, policy: str, **payment_columns: Any
) -> FollowUp:
    """A success arrived for an order no longer awaiting payment (cancelled, typically timed out).

    Under ``reinstate``, an order cancelled only because its hold ran out is placed again if all
    of its lines can be held again; everything else is refunded. The history says which.
    """
    await move_payment(uow, payment, PaymentStatus.SUCCEEDED, **payment_columns)
    if policy == "reinstate" and order.reason == Reason.PAYMENT_TIMEOUT:
        connection = await uow.connection()
        # A savepoint, because with several lines a shortage may leave some of them taken.
        savepoint = await connection.begin_nested()
        if await take_stock(connection, line_quantities(order)):
            await savepoint.commit()
            # Sold at once: the order is paid, so its new holds start COMMITTED.
            await add_holds(connection, order, utcnow(), state=HoldState.COMMITTED)
            await move_order(uow, order, OrderStatus.PLACED, note="late payment: reinstated")
            await _empty_cart(uow, order)
            return FollowUp.NOTHING
        await savepoint.rollback()
        shortage = await shortage_of(connection, line_quantities(order))
        note = f"late payment: refunded ({shortage.reason.value}: {shortage.sku})"
    else:
        note = f"late payment: refunded (policy {policy}, order {order.reason or order.status})"
    await add_note(uow, order, note)
    return await refund_whole(uow, order, payment, "late payment")


async def replaced_payment_succeeded(
    uow: UnitOfWork, order: OrderRecord, payment: PaymentRecord, **payment_columns: Any
) -> FollowUp:
    """An attempt the customer replaced with another succeeded anyway: the order stays on its
    current attempt and this one is refunded in full, so the order keeps exactly one charge."""
    await move_payment(uow, payment, PaymentStatus.SUCCEEDED, **payment_columns)
    await add_note(uow, order, f"replaced payment attempt {payment.attempt} succeeded: refunded")
    return await refund_whole(uow, order, payment, "replaced payment attempt")
