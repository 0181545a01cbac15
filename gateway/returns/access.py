"""Finding the order or the return a request names, as its caller may see it.

As for orders (:mod:`gateway.http.order_access`), a customer sees only their own: another
customer's order or return answers exactly like a missing one (404). Hot tables are read first
and the archive second; an order moves hot -> archive with its returns in one transaction, so
nothing is missed between the two reads.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.http.auth import Caller
from gateway.http.order_access import not_found
from gateway.http.problems import Problem
from models import documents
from models.order_record import OrderRecord
from models.return_documents import find_return
from models.tables import Order, orders_archive, table_of
from models.unit_of_work import UnitOfWork

_orders = table_of(Order)

# Return ids are 32 hex characters; anything longer cannot be one and never reaches the database.
MAX_RETURN_ID_LENGTH = 32


def return_id_param(request: web.Request, caller: Caller) -> str:
    """The ``{return_id}`` of the path; 404 when it cannot be a return id at all."""
    return_id = request.match_info["return_id"]
    if not (len(return_id) <= MAX_RETURN_ID_LENGTH and return_id.isascii() and return_id.isprintable()):
        raise return_not_found(return_id, caller)
    structlog.contextvars.bind_contextvars(return_id=return_id)
    return return_id


def return_not_found(return_id: str, caller: Caller) -> Problem:
    """The 404 for a return that does not exist or that ``caller`` may not see (the same answer)."""
    where = "" if caller.is_admin else " among your orders' returns"
    return Problem(404, f"no return {return_id!r}{where}")


async def order_owner(connection: AsyncConnection, order_id: str) -> tuple[str, bool] | None:
    """The account an order belongs to and whether it is archived; None when there is no such order."""
    for table, archived in ((_orders, False), (orders_archive, True)):
        owner = (
            await connection.execute(select(table.c.account_id).where(table.c.id == order_id))
        ).scalar_one_or_none()
        if owner is not None:
            return owner, archived
    return None


async def visible_order(connection: AsyncConnection, order_id: str, caller: Caller) -> bool:
    """Whether ``caller`` may see the order, and whether it is archived; 404 when they may not."""
    found = await order_owner(connection, order_id)
    if found is None or not caller.may_see(found[0]):
        raise not_found(order_id, caller)
    return found[1]


async def locked_order(uow: UnitOfWork, order_id: str, caller: Caller) -> OrderRecord | None:
    """The order, locked until ``uow`` ends, when ``caller`` may see it; None when it is archived
    (final: nothing changes it any more). 404 when there is none the caller may see."""
    order = await uow.lock_order(order_id)
    if order is None:
        await visible_order(await uow.connection(), order_id, caller)
        return None
    if not caller.may_see(order.account_id):
        raise not_found(order_id, caller)
    return order


async def visible_return(
    connection: AsyncConnection, return_id: str, caller: Caller
) -> tuple[documents.Return, bool]:
    """The return and whether it is archived, when ``caller`` may see its order; 404 otherwise."""
    found = await find_return(connection, return_id)
    if found is None:
        raise return_not_found(return_id, caller)
    owner = await order_owner(connection, found[0].order_id)
    if owner is None or not caller.may_see(owner[0]):
        raise return_not_found(return_id, caller)
    return found
