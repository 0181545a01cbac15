"""reserve: hold stock for every line of a new order, all or nothing.

PENDING -> AWAITING_PAYMENT (holds HELD until now + HOLD_SECONDS; `pay` is enqueued, and `expire`
delayed until the hold runs out), or
PENDING -> REJECTED (unknown_item / out_of_stock, nothing held). Any other status means the work
is done already: a duplicate delivery changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from actors.expire import schedule_expiry
from models.clock import utcnow
from models.inventory import hold_lines
from models.repository import lock_order
from models.state import OrderStatus, transition
from workers.queues import PAY, RESERVE
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


async def reserve_stock(runtime: Runtime, order_id: str) -> str | None:
    """Hold the order's stock; returns the order's status afterwards (None if no such order)."""
    async with runtime.uow() as uow:
        order = await lock_order(uow.session, order_id)
        if order is None:
            log.warning("reserve.unknown_order")
            return None
        if order.status != OrderStatus.PENDING:
            log.info("reserve.already_done", status=order.status)
            return order.status
        expires_at = utcnow() + timedelta(seconds=runtime.settings.hold_seconds)
        shortage = await hold_lines(uow.session, order, expires_at)
        if shortage is not None:
            transition(order, OrderStatus.REJECTED, shortage.reason)
            await uow.commit()
            log.info("order.rejected", reason=shortage.reason.value, sku=shortage.sku)
            return order.status
        order.hold_expires_at = expires_at
        transition(order, OrderStatus.AWAITING_PAYMENT)
        uow.enqueue(PAY, order_id=order.id)
        schedule_expiry(uow, order.id, expires_at)
        await uow.commit()
        log.info("order.stock_held", hold_expires_at=expires_at.isoformat(),
                 units=sum(line.quantity for line in order.lines))
        return order.status


reserve = step_actor(RESERVE, reserve_stock)
