"""reserve: hold stock for every line of a new order, all or nothing.

PENDING -> AWAITING_PAYMENT (holds HELD until now + HOLD_SECONDS; `pay` is enqueued, and `expire`
delayed until the hold runs out), or
PENDING -> REJECTED (unknown_item / out_of_stock, nothing held). Any other status means the work
is done already: a duplicate delivery changes nothing.

All lines are taken in one conditional UPDATE. When one of several lines falls short the whole
transaction is rolled back (some lines may have been taken) and a second one rejects the order,
so the common case pays for no savepoint.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from actors.expire import schedule_expiry
from actors.preamble import NothingToDo, lock_order_to_move
from messaging.queues import PAY, RESERVE
from models.clock import utcnow
from models.inventory import add_holds, line_quantities, shortage_of, take_stock
from models.order_moves import move_order
from models.state import OrderStatus
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


async def reserve_stock(runtime: Runtime, order_id: str) -> str | None:
    """Hold the order's stock; returns the order's status afterwards (None if no such order)."""
    async with runtime.uow() as uow:
        order = await lock_order_to_move(
            uow, order_id, log=log, step="reserve", movable_from=(OrderStatus.PENDING,)
        )
        if isinstance(order, NothingToDo):
            return order.status
        connection = await uow.connection()
        quantities = line_quantities(order)
        if quantities and await take_stock(connection, quantities):
            expires_at = utcnow() + timedelta(seconds=runtime.settings.hold_seconds)
            await add_holds(connection, order, expires_at)
            order.hold_expires_at = expires_at
            await move_order(uow, order, OrderStatus.AWAITING_PAYMENT)
            uow.enqueue(PAY, order_id=order.id)
            schedule_expiry(uow, order.id, expires_at)
            await uow.commit()
            log.info(
                "order.stock_held", hold_expires_at=expires_at.isoformat(), units=sum(quantities.values())
            )
            return order.status
    return await _reject(runtime, order_id)


async def _reject(runtime: Runtime, order_id: str) -> str | None:
    """Reject the order for the line that could not be held (nothing of it is held)."""
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        if order is None or order.status != OrderStatus.PENDING:
            return order.status if order else None
        shortage = await shortage_of(await uow.connection(), line_quantities(order))
        await move_order(uow, order, OrderStatus.REJECTED, shortage.reason)
        await uow.commit()
    log.info("order.rejected", reason=shortage.reason.value, sku=shortage.sku)
    return order.status


reserve = step_actor(RESERVE, reserve_stock)
