"""The fulfilment side of an order, done by the operator: shipping and delivering.

Both are plain state-machine moves made by the gateway itself, under the order row's lock so a
cancel step racing a ship sees one outcome or the other, never both.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.auth import Caller
from gateway.order_access import find_order
from gateway.problems import ILLEGAL_TRANSITION, Problem
from models.state import ORDER_TRANSITIONS, IllegalTransition, OrderStatus, transition
from models.tables import Order
from models.unit_of_work import Notifier, Publisher, UnitOfWork

log = structlog.get_logger(__name__)

OPERATOR = Caller(account_id=None)


def _sources(target: OrderStatus) -> list[str]:
    """The statuses an order may move to ``target`` from, per the state machine's table."""
    return sorted(source.value for source, destination in ORDER_TRANSITIONS if destination == target)


async def advance(sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher, notifier: Notifier,
                  order_id: str, target: OrderStatus) -> Order:
    """Move an order to ``target`` (SHIPPED or DELIVERED) and return it.

    Raises a 404 :class:`Problem` for an unknown order and a 409 one naming the current status
    when the move is not allowed from there (shipping twice included).
    """
    async with UnitOfWork(sessionmaker, publisher, notifier) as uow:
        order = await find_order(uow.session, order_id, OPERATOR, lock=True)
        try:
            transition(order, target)
        except IllegalTransition:
            raise Problem(ILLEGAL_TRANSITION,
                          f"order {order.id} is {order.status}; only an order that is "
                          f"{' or '.join(_sources(target))} can become {target.value}",
                          order_status=order.status) from None
        await uow.commit()
    log.info("order.advanced", status=target.value)
    return order
