"""cancel: a customer or an admin cancels an order.

Before payment: CANCELLED, stock back, the provider payment given up. Paid but not shipped:
CANCELLED, stock back, payment refunded. Shipped or delivered: refused (the gateway answers 409
before enqueueing; this covers an order shipped in between). Cancelled twice: nothing changes.
"""

from __future__ import annotations

import structlog

from actors.preamble import NothingToDo, lock_order_to_move
from messaging.queues import CANCEL
from models.order_flow import cancel_paid, cancel_unpaid
from models.state import OrderStatus, Reason
from workers.follow_up import enqueue_follow_up
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)

CANCEL_REASONS = (Reason.CUSTOMER_CANCELLED, Reason.ADMIN_CANCELLED)
#: Statuses an order can still be cancelled from (paid ones are refunded).
UNPAID = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT)
CANCELLABLE = (*UNPAID, OrderStatus.PLACED)


async def cancel_order(runtime: Runtime, order_id: str, reason: str) -> str | None:
    """Cancel the order for ``reason`` if it still can be; returns the status afterwards."""
    reason = Reason(reason)
    if reason not in CANCEL_REASONS:
        raise ValueError(f"not a cancellation reason: {reason}")
    async with runtime.uow() as uow:
        order = await lock_order_to_move(
            uow,
            order_id,
            log=log,
            step="cancel",
            movable_from=CANCELLABLE,
            skipped="not_applicable",
            log_reason=True,
        )
        if isinstance(order, NothingToDo):
            return order.status
        if order.status in UNPAID:
            follow_up = await cancel_unpaid(uow, order, reason)
        else:
            follow_up = await cancel_paid(uow, order, reason)
        enqueue_follow_up(uow, order, follow_up)
        await uow.commit()
    log.info("order.cancelled", reason=reason.value, follow_up=follow_up.value)
    return order.status


cancel = step_actor(CANCEL, cancel_order)
