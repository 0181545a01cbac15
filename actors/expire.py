"""expire: release an unpaid hold when it runs out, driven by a delayed message.

`reserve` enqueues this step with a delay equal to the hold. RabbitMQ closes a channel that keeps
a message unacknowledged longer than its consumer timeout (30 min by default), and a delayed
message is held unacknowledged by the worker until it is due, so a long delay travels in hops of
at most :data:`HOP_MS`: each run re-reads ``hold_expires_at`` and, if the hold is not due yet
(a longer hold, or an extended one), sends itself again for the rest.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from actors.preamble import NothingToDo, lock_order_to_move
from messaging.queues import EXPIRE
from models.clock import utcnow
from models.order_flow import cancel_unpaid
from models.state import OrderStatus, Reason
from models.unit_of_work import UnitOfWork
from workers.follow_up import enqueue_follow_up
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)

#: Longest single delay: well below RabbitMQ's default 30-minute consumer timeout.
HOP_MS = 10 * 60 * 1000


def schedule_expiry(uow: UnitOfWork, order_id: str, expires_at: datetime) -> None:
    """Enqueue `expire` for ``expires_at`` (or the next hop towards it) in the caller's transaction."""
    remaining_ms = max(int((expires_at - utcnow()).total_seconds() * 1000), 0)
    uow.enqueue(EXPIRE, order_id=order_id, delay_ms=min(remaining_ms, HOP_MS) or None)


async def expire_hold(runtime: Runtime, order_id: str) -> str | None:
    """Cancel the order as payment_timeout if its hold is due; returns the status afterwards."""
    async with runtime.uow() as uow:
        order = await lock_order_to_move(
            uow, order_id, log=log, step="expire", movable_from=(OrderStatus.AWAITING_PAYMENT,)
        )
        if isinstance(order, NothingToDo):
            return order.status
        expires_at = order.hold_expires_at
        # `reserve` sets the hold's end in the same move that makes the order AWAITING_PAYMENT.
        assert expires_at is not None, "an order awaiting payment has a hold"
        if expires_at > utcnow():
            schedule_expiry(uow, order.id, expires_at)
            await uow.commit()
            log.info("expire.not_due_yet", hold_expires_at=expires_at.isoformat())
            return order.status
        follow_up = await cancel_unpaid(uow, order, Reason.PAYMENT_TIMEOUT)
        enqueue_follow_up(uow, order, follow_up)
        await uow.commit()
    late_ms = (utcnow() - expires_at).total_seconds() * 1000
    log.info("order.cancelled", reason="payment_timeout", release_late_ms=round(late_ms, 1))
    return order.status


expire = step_actor(EXPIRE, expire_hold)
