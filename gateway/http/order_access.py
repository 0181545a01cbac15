"""Finding the order a request names, as its caller may see it.

A customer sees only their own orders: another customer's order answers exactly like a missing
one (404), so order ids cannot be probed. The operator (admin token) sees every order.

Finished orders move to the archive tables after a while (:mod:`models.archive`); they stay
findable here, marked ``archived``. The hot table is read first and the archive second: an
order only ever moves hot -> archive, in one transaction, so a miss in the hot table followed
by a read of the archive cannot miss an order being moved between the two reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.http.auth import Caller
from gateway.http.problems import Problem
from models.archive import load_archived_order
from models.documents import Order as OrderDocument
from models.documents import Return as ReturnDocument
from models.repository import lock_order
from models.return_documents import load_archived_returns, load_returns
from models.state import OrderStatus
from models.tables import Order
from models.views import order_document

# Order ids are 32 hex characters; anything longer cannot be one and never reaches the database.
MAX_ORDER_ID_LENGTH = 32


def order_id_param(request: web.Request, caller: Caller) -> str:
    """The ``{order_id}`` of the path; 404 when it cannot be an order id at all."""
    order_id = request.match_info["order_id"]
    if not (len(order_id) <= MAX_ORDER_ID_LENGTH and order_id.isascii() and order_id.isprintable()):
        raise not_found(order_id, caller)
    structlog.contextvars.bind_contextvars(order_id=order_id)
    return order_id


def not_found(order_id: str, caller: Caller) -> Problem:
    """The 404 for an order that does not exist or that ``caller`` may not see (the same answer)."""
    where = "" if caller.is_admin else " among your orders"
    return Problem(404, f"no order {order_id!r}{where}")


@dataclass(frozen=True)
class FoundOrder:
    """An order as found: from the hot tables, or rebuilt (detached) from the archive."""

    order: Order
    archived: bool = False
    #: The order's returns, oldest first, when they were read (only a delivered order has any).
    returns: list[ReturnDocument] | None = None

    def document(self) -> OrderDocument:
        """The order document, with its ``archived`` flag and its returns."""
        return order_document(self.order, archived=self.archived, returns=self.returns)


async def returns_of(session: AsyncSession, order: Order, archived: bool) -> list[ReturnDocument] | None:
    """The returns of a delivered order, from the tables the order was found in; None for an order
    in any other status, which cannot have any (so nothing is read)."""
    if order.status != OrderStatus.DELIVERED:
        return None
    read = load_archived_returns if archived else load_returns
    return await read(await session.connection(), order.id)


async def find_order(
    session: AsyncSession, order_id: str, caller: Caller, *, lock: bool = False
) -> FoundOrder:
    """The order ``caller`` may see, with its lines, payments and history; 404 otherwise.

    ``lock`` takes the row lock (``SELECT ... FOR UPDATE``) every change of an order starts with.
    An archived order is returned unlocked: it is final, nothing changes it any more, and its
    detached object must not be changed either (callers check ``archived``).
    """
    if lock:
        order = await lock_order(session, order_id)
    else:
        order = await session.scalar(select(Order).where(Order.id == order_id))
    archived = False
    if order is None:
        order, archived = await load_archived_order(session, order_id), True
    if order is None or not caller.may_see(order.account_id):
        raise not_found(order_id, caller)
    return FoundOrder(order, archived, await returns_of(session, order, archived))
