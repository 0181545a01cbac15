"""What the fleet's database says about the run's orders: the orders, their refunds and returns.

Read from the hot tables and the ``*_archive`` tables alike, so an order archived during the run
is judged like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select

from models.archive import rebuild_archived
from models.state import OrderStatus, PaymentStatus, RefundStatus, ReturnStatus
from models.tables import (
    Order,
    Refund,
    Return,
    orders_archive,
    refunds_archive,
    returns_archive,
    table_of,
)

#: Order statuses in which a step is still due.
UNFINISHED_ORDERS = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT)
#: Statements read at most this many ids at a time.
CHUNK = 500


@dataclass(frozen=True)
class RefundRow:
    """One refund as our records have it."""

    id: str
    order_id: str
    payment_id: str
    amount_cents: int
    status: str
    reason: str | None
    return_id: str | None
    updated_at: datetime

    @property
    def by_the_order_flow(self) -> bool:
        """The flow's own refund of a whole payment (a cancel, a late or replaced payment) carries
        the payment's id; a refund the operator or a return asked for has an id of its own."""
        return self.id == self.payment_id


@dataclass(frozen=True)
class ReturnRow:
    """One return as our records have it."""

    id: str
    order_id: str
    status: str
    restocked: bool | None
    created_at: datetime


@dataclass
class OrderRecords:
    """Everything the verdict reads of one order."""

    order: Order
    refunds: list[RefundRow] = field(default_factory=list)
    returns: list[ReturnRow] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.order.id

    def unsettled(self) -> str | None:
        """Why the order is not settled yet, or None once nothing about it can still change by itself.

        Settled means: final or past payment, no refund in flight (neither a PENDING refund nor a
        REFUND_PENDING payment) and no return RECEIVED and awaiting its refund.
        """
        if self.order.status in UNFINISHED_ORDERS:
            return f"order {self.order.status}"
        if any(payment.status == PaymentStatus.REFUND_PENDING for payment in self.order.payments):
            return "payment REFUND_PENDING"
        if any(refund.status == RefundStatus.PENDING for refund in self.refunds):
            return "refund PENDING"
        if any(ret.status == ReturnStatus.RECEIVED for ret in self.returns):
            return "return RECEIVED, awaiting its refund"
        return None


async def all_order_ids(sessionmaker) -> list[str]:
    """Every order of the run, hot or archived, also those whose client gave up before the answer."""
    async with sessionmaker() as session:
        hot = (await session.scalars(select(Order.id))).all()
        archived = (await session.scalars(select(orders_archive.c.id))).all()
    return [*hot, *archived]


async def load_records(sessionmaker, ids: list[str]) -> dict[str, OrderRecords]:
    """The orders ``ids`` as the database has them now (hot or archived), with refunds and returns."""
    found: dict[str, OrderRecords] = {}
    async with sessionmaker() as session:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            for order in (await session.scalars(select(Order).where(Order.id.in_(chunk)))).all():
                found[order.id] = OrderRecords(order)
            rows = [
                dict(r)
                for r in (await session.execute(select(orders_archive).where(orders_archive.c.id.in_(chunk))))
                .mappings()
                .all()
            ]
            for order in await rebuild_archived(session, rows):
                found[order.id] = OrderRecords(order)
            for table in (table_of(Refund), refunds_archive):
                for row in await _rows(session, table, chunk):
                    if row["order_id"] in found:
                        found[row["order_id"]].refunds.append(_refund(row))
            for table in (table_of(Return), returns_archive):
                for row in await _rows(session, table, chunk):
                    if row["order_id"] in found:
                        found[row["order_id"]].returns.append(_return(row))
    return found


async def _rows(session, table: Table, order_ids: list[str]) -> list[Any]:
    return list(
        (await session.execute(select(table).where(table.c.order_id.in_(order_ids)))).mappings().all()
    )


def _refund(row: Any) -> RefundRow:
    return RefundRow(
        id=row["id"],
        order_id=row["order_id"],
        payment_id=row["payment_id"],
        amount_cents=int(row["amount_cents"]),
        status=row["status"],
        reason=row["reason"],
        return_id=row["return_id"],
        updated_at=row["updated_at"],
    )


def _return(row: Any) -> ReturnRow:
    return ReturnRow(
        id=row["id"],
        order_id=row["order_id"],
        status=row["status"],
        restocked=None if row["restocked"] is None else bool(row["restocked"]),
        created_at=row["created_at"],
    )
