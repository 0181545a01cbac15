"""Asking for an order to be cancelled: the gateway decides whether it still can be, the
``cancel`` step does it.

Deciding under the order row's lock means a ``ship`` racing the request is seen either before
(409) or after (the step finds SHIPPED and does nothing: docs/architecture.md, "The workers").
The status itself changes later, in the worker, which also releases stock and refunds.

An archived order is final: it answers as its status does (DELIVERED 409, CANCELLED or
REJECTED 202 with nothing queued).
"""

from __future__ import annotations

import structlog

from gateway.http.auth import Caller
from gateway.http.order_access import FoundOrder, find_order
from gateway.http.problems import NOT_CANCELLABLE, Problem
from messaging.queues import CANCEL
from models.state import OrderStatus, Reason
from models.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

# Goods that have left the warehouse cannot be called back by cancelling the order.
_TOO_LATE = {
    OrderStatus.SHIPPED: "it has already been shipped",
    OrderStatus.DELIVERED: "it has already been delivered",
}
# Orders that are over already: cancelling (again) changes nothing and is not an error.
_ALREADY_OVER = frozenset({OrderStatus.CANCELLED, OrderStatus.REJECTED})


async def request_cancel(units_of_work: UnitOfWorkFactory, order_id: str, caller: Caller) -> FoundOrder:
    """Queue the cancellation of an order ``caller`` may see; returns the order as it is now.

    Raises a 404 :class:`Problem` for an order the caller cannot see and a 409 one for an order
    that has shipped.
    """
    reason = Reason.ADMIN_CANCELLED if caller.is_admin else Reason.CUSTOMER_CANCELLED
    async with units_of_work() as uow:
        found = await find_order(uow.session, order_id, caller, lock=True)
        order = found.order
        status = OrderStatus(order.status)
        if status in _TOO_LATE:
            raise Problem(
                NOT_CANCELLABLE,
                f"order {order.id} cannot be cancelled: {_TOO_LATE[status]}",
                order_status=status.value,
            )
        # Only final orders are archived, so this is belt and braces: the cancel step could not
        # find an archived order anyway, and queueing it would only leave a dead message.
        queued = status not in _ALREADY_OVER and not found.archived
        if queued:
            uow.enqueue(CANCEL, order_id=order.id, reason=reason.value)
        # Committing also when nothing was queued keeps the loaded order readable after the
        # block (a rollback would expire it) and releases the lock just the same.
        await uow.commit()
    log.info(
        "order.cancel_requested",
        status=status.value,
        reason=reason.value,
        queued=queued,
        archived=found.archived,
    )
    return found
