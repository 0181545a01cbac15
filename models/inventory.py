"""Stock moves: holding, committing and releasing, always paired with a ledger row.

``available`` only changes through conditional UPDATEs here, so it can never go below zero
even when many orders race for the last unit; the CHECK constraint is the second line.
Per SKU, ``received = available + held + committed`` holds after every move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.clock import utcnow
from models.state import HoldState, Reason
from models.tables import Order, ReservedStock, Stock


@dataclass(frozen=True)
class Shortage:
    """Why a set of lines could not be held."""

    reason: Reason
    sku: str


async def hold_lines(session: AsyncSession, order: Order, expires_at: datetime) -> Shortage | None:
    """Hold every line of ``order`` or none of them.

    Lines are taken in SKU order so two orders never lock the same rows in opposite orders.
    On a shortage everything taken so far is rolled back (savepoint) and the reason returned.
    """
    savepoint = await session.begin_nested()
    for line in sorted(order.lines, key=lambda line: line.sku):
        taken = await session.execute(
            update(Stock)
            .where(Stock.sku == line.sku, Stock.available >= line.quantity)
            .values(available=Stock.available - line.quantity)
        )
        if taken.rowcount != 1:
            await savepoint.rollback()
            known = await session.scalar(select(Stock.sku).where(Stock.sku == line.sku))
            return Shortage(Reason.OUT_OF_STOCK if known else Reason.UNKNOWN_ITEM, line.sku)
    await savepoint.commit()
    for line in order.lines:
        order.holds.append(ReservedStock(sku=line.sku, quantity=line.quantity, expires_at=expires_at,
                                         state=HoldState.HELD.value))
    return None


async def commit_holds(order: Order) -> int:
    """Turn the order's HELD rows into COMMITTED (the stock is sold); returns how many moved."""
    moved = 0
    for hold in order.holds:
        if hold.state == HoldState.HELD:
            hold.state = HoldState.COMMITTED.value
            moved += 1
    return moved


async def release_holds(session: AsyncSession, order: Order, states: tuple[HoldState, ...] = (HoldState.HELD,)) -> int:
    """Give the stock of the order's holds in ``states`` back to ``available``; returns units."""
    units = 0
    now = utcnow()
    for hold in sorted(order.holds, key=lambda hold: hold.sku):
        if hold.state not in states:
            continue
        await session.execute(
            update(Stock).where(Stock.sku == hold.sku).values(available=Stock.available + hold.quantity)
        )
        hold.state = HoldState.RELEASED.value
        hold.released_at = now
        units += hold.quantity
    return units
