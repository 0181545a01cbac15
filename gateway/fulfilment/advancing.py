"""The fulfilment side of an order, done by the operator: shipping and delivering.

Both are plain state-machine moves made by the gateway itself, under the order row's lock so a
cancel step racing a ship sees one outcome or the other, never both. The move announces itself
to the unit of work like any worker step's: the customer's email and the ``order.shipped`` /
``order.delivered`` domain event go to the outbox in the same transaction.
"""

from __future__ import annotations

import structlog

from gateway.http.auth import Caller
from gateway.http.order_access import FoundOrder, find_order
from gateway.http.problems import ILLEGAL_TRANSITION, Problem
from models.state import ORDER_TRANSITIONS, IllegalTransition, OrderStatus
from models.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

OPERATOR = Caller(account_id=None)


def _sources(target: OrderStatus) -> list[str]:
    """The statuses an order may move to ``target`` from, per the state machine's table."""
    return sorted(source.value for source, destination in ORDER_TRANSITIONS if destination == target)


def _refusal(found: FoundOrder, target: OrderStatus) -> Problem:
    order = found.order
    where = " and archived" if found.archived else ""
    return Problem(
        ILLEGAL_TRANSITION,
        f"order {order.id} is {order.status}{where}; only an order that is "
        f"{' or '.join(_sources(target))} can become {target.value}",
        order_status=order.status,
    )


async def advance(units_of_work: UnitOfWorkFactory, order_id: str, target: OrderStatus) -> FoundOrder:
    """Move an order to ``target`` (SHIPPED or DELIVERED) and return it.

    Raises a 404 :class:`Problem` for an unknown order and a 409 one naming the current status
    when the move is not allowed from there (shipping twice, or any move of an archived order).
    """
    async with units_of_work() as uow:
        found = await find_order(uow.session, order_id, OPERATOR, lock=True)
        # An archived order is a detached copy: a transition on it would be answered but never stored.
        if found.archived:
            raise _refusal(found, target)
        try:
            uow.move(found.order, target)
        except IllegalTransition:
            raise _refusal(found, target) from None
        await uow.commit()
    log.info("order.advanced", status=target.value)
    return found
