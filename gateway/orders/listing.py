"""``GET /orders``: one page of orders, newest first, from the hot tables and the archive together.

Each table is asked for the keys (created_at, id) of at most ``limit + 1`` orders past the
cursor, which the (account_id, created_at) indexes answer without touching other rows; the two
key lists are merged and cut, and only the orders that made the page are loaded in full. The
extra key says whether another page follows.

The database runs READ COMMITTED, so the archiver may move an order between two of these
statements. The hot table is read first, so such an order shows up in both key lists (merged
into one) rather than in neither, and an order gone from the hot table by the time it is loaded
is loaded from the archive instead.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.http.order_access import FoundOrder
from gateway.orders.cursors import Cursor
from gateway.orders.schemas import OrderPage
from models.archive import rebuild_archived
from models.documents import Return as ReturnDocument
from models.return_documents import returns_of_orders
from models.state import OrderStatus
from models.tables import Order, orders_archive


def _keys_query(
    created_at,
    order_id,
    account_id_column,
    status_column,
    *,
    account_id: str | None,
    status: str | None,
    after: Cursor | None,
    limit: int,
):
    """The (created_at, id) of the next ``limit`` orders of one table, newest first."""
    conditions: list[ColumnElement[bool]] = [true()]
    if account_id is not None:
        conditions.append(account_id_column == account_id)
    if status is not None:
        conditions.append(status_column == status)
    if after is not None:
        # The `<=` alone gives the optimizer a range on created_at; the `or_` breaks ties by id.
        conditions.append(
            and_(created_at <= after.created_at, or_(created_at < after.created_at, order_id < after.id))
        )
    return (
        select(created_at, order_id)
        .where(*conditions)
        .order_by(created_at.desc(), order_id.desc())
        .limit(limit)
    )


async def list_orders(
    session: AsyncSession, *, account_id: str | None, status: str | None, limit: int, after: Cursor | None
) -> OrderPage:
    """One page of orders (of ``account_id``, or of everyone when None), newest first."""
    filters: dict[str, Any] = {"account_id": account_id, "status": status, "after": after, "limit": limit + 1}
    hot = (
        await session.execute(
            _keys_query(Order.created_at, Order.id, Order.account_id, Order._status, **filters)
        )
    ).all()
    archive = orders_archive.c
    archived = (
        await session.execute(
            _keys_query(archive.created_at, archive.id, archive.account_id, archive.status, **filters)
        )
    ).all()

    # An order moved between the two reads is in both lists: the archive's entry is the current one.
    where = {order_id: False for _, order_id in hot} | {order_id: True for _, order_id in archived}
    keys = heapq.nlargest(
        limit + 1, {Cursor(created_at, order_id) for created_at, order_id in [*hot, *archived]}
    )
    page, more = keys[:limit], len(keys) > limit
    found = await _load(
        session,
        hot_ids=[k.id for k in page if not where[k.id]],
        archived_ids=[k.id for k in page if where[k.id]],
    )
    # An order that vanished altogether (nothing deletes archived orders today) is simply left out.
    return OrderPage(
        orders=[found[key.id].document() for key in page if key.id in found],
        next_cursor=page[-1].encode() if more else None,
    )


async def _load(
    session: AsyncSession, *, hot_ids: list[str], archived_ids: list[str]
) -> dict[str, FoundOrder]:
    """The orders of the page in full, by id; hot ones archived meanwhile are read from the archive."""
    found: dict[str, FoundOrder] = {}
    if hot_ids:
        hot = (await session.scalars(select(Order).where(Order.id.in_(hot_ids)))).all()
        returns = await _returns(session, hot, archived=False)
        for order in hot:
            found[order.id] = FoundOrder(order, returns=returns.get(order.id))
    from_archive = [*archived_ids, *(order_id for order_id in hot_ids if order_id not in found)]
    if from_archive:
        rows = await session.execute(select(orders_archive).where(orders_archive.c.id.in_(from_archive)))
        archived = await rebuild_archived(session, [dict(row) for row in rows.mappings().all()])
        returns = await _returns(session, archived, archived=True)
        for order in archived:
            found[order.id] = FoundOrder(order, archived=True, returns=returns.get(order.id))
    return found


async def _returns(
    session: AsyncSession, orders: Sequence[Order], *, archived: bool
) -> dict[str, list[ReturnDocument]]:
    """The returns of the delivered ones of ``orders`` (no other status has any), in two statements;
    a delivered order without returns maps to an empty list."""
    delivered = [order.id for order in orders if order.status == OrderStatus.DELIVERED]
    if not delivered:
        return {}
    found = await returns_of_orders(await session.connection(), delivered, archived=archived)
    return {order_id: found.get(order_id, []) for order_id in delivered}
