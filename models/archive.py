"""Moving finished orders out of the hot tables into the ``*_archive`` tables, and reading them back.

An order DELIVERED, CANCELLED or REJECTED for longer than ARCHIVE_AFTER_SECONDS moves with its
lines, history, payments, holds, refunds and returns, one batch per transaction, unless it still
has money in flight (:func:`_money_in_flight`) or a return under way (:func:`_open_return`): its
provider webhook must find the payment where `settle` looks for it, and the operator must find
the return where receiving or rejecting it looks, so such an order stays until both are settled.
The units its COMMITTED holds sold are added to ``stock.committed_archived`` in the same
transaction, so the stock ledger still balances after the holds leave.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.clock import utcnow
from models.state import HoldState, OrderStatus, PaymentStatus, RefundStatus, ReturnStatus
from models.tables import (
    ARCHIVED_CHILDREN,
    Order,
    OrderHistory,
    OrderLine,
    Payment,
    Refund,
    ReservedStock,
    Return,
    Stock,
    order_history_archive,
    order_lines_archive,
    orders_archive,
    payments_archive,
    reserved_stock_archive,
    table_of,
)

log = structlog.get_logger(__name__)

#: Orders archived per transaction.
BATCH_SIZE = 200

ARCHIVABLE = (OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


def _money_in_flight():
    """The order has a payment on which the provider may still move money: a charge it knows of
    and has not decided (PENDING with the provider's id), or a refund asked for and not yet
    confirmed (REFUND_PENDING, or a refund row still PENDING)."""
    return or_(
        exists().where(
            Payment.order_id == Order.id,
            or_(
                Payment._status == PaymentStatus.REFUND_PENDING.value,
                and_(
                    Payment._status == PaymentStatus.PENDING.value, Payment.provider_payment_id.is_not(None)
                ),
            ),
        ),
        exists().where(Refund.order_id == Order.id, Refund.status == RefundStatus.PENDING.value),
    )


def _open_return():
    """The order has a return still under way (REQUESTED or RECEIVED): the operator will still
    receive or reject it, or its refund is still to be confirmed."""
    return exists().where(
        Return.order_id == Order.id,
        Return.status.in_([ReturnStatus.REQUESTED.value, ReturnStatus.RECEIVED.value]),
    )


def _due(older_than: datetime):
    return select(Order.id).where(
        Order._status.in_([s.value for s in ARCHIVABLE]),
        Order.updated_at < older_than,
        ~_money_in_flight(),
        ~_open_return(),
    )


async def count_due(session: AsyncSession, older_than: datetime) -> int:
    """How many orders are waiting to be archived."""
    return await session.scalar(select(func.count()).select_from(_due(older_than).subquery())) or 0


async def archive_batch(session: AsyncSession, older_than: datetime, batch_size: int = 200) -> list[str]:
    """Move up to ``batch_size`` due orders to the archive in the caller's transaction; returns their ids."""
    ids = list(
        (
            await session.scalars(
                _due(older_than)
                .order_by(Order.updated_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not ids:
        return []
    sold = await session.execute(
        select(ReservedStock.sku, func.sum(ReservedStock.quantity))
        .where(ReservedStock.order_id.in_(ids), ReservedStock.state == HoldState.COMMITTED)
        .group_by(ReservedStock.sku)
        .order_by(ReservedStock.sku)
    )
    for sku, quantity in sold.all():
        await session.execute(
            update(Stock)
            .where(Stock.sku == sku)
            .values(committed_archived=Stock.committed_archived + quantity)
        )
    for hot, archive in ARCHIVED_CHILDREN:
        columns = [column.name for column in hot.columns]
        await session.execute(
            archive.insert().from_select(columns, select(hot).where(hot.c.order_id.in_(ids)))
        )
        await session.execute(delete(hot).where(hot.c.order_id.in_(ids)))
    orders = table_of(Order)
    order_columns = [column.name for column in orders.columns]
    await session.execute(
        orders_archive.insert().from_select(
            [*order_columns, "archived_at"],
            select(*orders.columns, literal(utcnow(), orders_archive.c.archived_at.type)).where(
                Order.id.in_(ids)
            ),
        )
    )
    await session.execute(delete(orders).where(Order.id.in_(ids)))
    return ids


def _rows(result) -> list[dict[str, Any]]:
    return [dict(row) for row in result.mappings().all()]


async def load_archived_order(session: AsyncSession, order_id: str) -> Order | None:
    """An archived order rebuilt as a detached :class:`Order` (with lines, history, payments, holds)."""
    row = (
        (await session.execute(select(orders_archive).where(orders_archive.c.id == order_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    [order] = await rebuild_archived(session, [dict(row)])
    return order


async def rebuild_archived(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Order]:
    """Detached :class:`Order` objects for archive rows of ``orders_archive``, children attached."""
    ids = [row["id"] for row in rows]
    children: dict[str, dict[str, list[dict[str, Any]]]] = {order_id: {} for order_id in ids}
    for name, table, order_by in (
        ("lines", order_lines_archive, order_lines_archive.c.sku),
        ("history", order_history_archive, order_history_archive.c.id),
        ("payments", payments_archive, payments_archive.c.attempt),
        ("holds", reserved_stock_archive, reserved_stock_archive.c.sku),
    ):
        for child in _rows(
            await session.execute(select(table).where(table.c.order_id.in_(ids)).order_by(order_by))
        ):
            children[child["order_id"]].setdefault(name, []).append(child)
    orders = []
    for row in rows:
        fields = {key: value for key, value in row.items() if key not in ("status", "archived_at")}
        order = Order(_status=row["status"], **fields)
        kids = children[row["id"]]
        order.lines = [OrderLine(**child) for child in kids.get("lines", [])]
        order.history = [OrderHistory(**child) for child in kids.get("history", [])]
        order.payments = [Payment(_status=child.pop("status"), **child) for child in kids.get("payments", [])]
        order.holds = [ReservedStock(**child) for child in kids.get("holds", [])]
        orders.append(order)
    return orders


async def archive_finished(
    sessionmaker: async_sessionmaker[AsyncSession],
    older_than_seconds: int,
    *,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Archive due orders batch by batch, one transaction each; returns how many moved.

    ``progress`` is called with each batch's size (the command line draws a bar with it).
    """
    older_than = utcnow() - timedelta(seconds=older_than_seconds)
    moved = batches = 0
    while max_batches is None or batches < max_batches:
        async with sessionmaker() as session, session.begin():
            ids = await archive_batch(session, older_than, batch_size)
        if not ids:
            break
        moved += len(ids)
        batches += 1
        log.info("archive.batch", orders=len(ids), first_order_id=ids[0])
        if progress is not None:
            progress(len(ids))
    return moved
