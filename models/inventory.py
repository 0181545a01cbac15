"""Stock moves: holding, committing and releasing, always paired with a hold row; receipts.

``available`` changes only in this module. It goes down only through a conditional UPDATE
(:func:`take_stock`), so it can never go below zero even when many orders race for the last
unit; the CHECK constraint is the second line. It goes up by relative UPDATEs when holds are
released, when returned units go back on sale (:func:`restock_returned`) and when stock is
received (:func:`book_receipt`), and the reconciliation's repair sets
it to what the ledger says (:func:`repair_available`). Per SKU, ``received = available + held +
committed`` holds after every move.

All lines of an order move in one statement: ``CASE sku WHEN ... THEN quantity`` gives each SKU
its own quantity, and InnoDB locks the rows in primary-key order whatever the order of the
lines, so two orders over the same SKUs never wait for each other in a circle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from models.clock import utcnow
from models.order_record import HoldRecord, OrderRecord
from models.state import HoldState, Reason
from models.tables import ReservedStock, Stock, StockReceipt, table_of

_stock = table_of(Stock)
_holds = table_of(ReservedStock)
_receipts = table_of(StockReceipt)


@dataclass(frozen=True)
class Shortage:
    """Why a set of lines could not be held."""

    reason: Reason
    sku: str


def _per_sku(quantities: dict[str, int]) -> Any:
    return case(quantities, value=_stock.c.sku)


async def take_stock(connection: AsyncConnection, quantities: dict[str, int]) -> bool:
    """Take ``quantities`` (SKU -> units) from ``available``, all of them or, as far as the caller
    can tell, none: True when every SKU had enough.

    On False with several SKUs, some may have been taken: the caller must roll the transaction
    (or a savepoint) back. With one SKU, False means nothing changed.
    """
    wanted = _per_sku(quantities)
    taken = await connection.execute(
        update(_stock)
        .where(and_(_stock.c.sku.in_(list(quantities)), _stock.c.available >= wanted))
        .values(available=_stock.c.available - wanted)
    )
    return taken.rowcount == len(quantities)


async def shortage_of(connection: AsyncConnection, quantities: dict[str, int]) -> Shortage:
    """Which line could not be held and why: a SKU with no stock row is unknown, else out of stock.

    Reads the committed stock of the SKUs (first in SKU order that falls short).
    """
    rows = (
        await connection.execute(
            select(_stock.c.sku, _stock.c.available).where(_stock.c.sku.in_(list(quantities)))
        )
    ).all()
    available = {row.sku.lower(): row.available for row in rows}
    for sku in sorted(quantities):
        if sku.lower() not in available:
            return Shortage(Reason.UNKNOWN_ITEM, sku)
    for sku in sorted(quantities):
        if available[sku.lower()] < quantities[sku]:
            return Shortage(Reason.OUT_OF_STOCK, sku)
    # Enough of everything now: another order gave stock back meanwhile. Still a shortage at the
    # moment it was asked; the first SKU stands for it.
    return Shortage(Reason.OUT_OF_STOCK, sorted(quantities)[0])


def line_quantities(order: OrderRecord) -> dict[str, int]:
    """SKU -> units of the order's lines (a SKU is on one line only)."""
    return {line.sku: line.quantity for line in order.lines}


async def add_holds(
    connection: AsyncConnection, order: OrderRecord, expires_at: datetime, state: HoldState = HoldState.HELD
) -> None:
    """Record a hold row per line of ``order`` (the stock was taken by :func:`take_stock`)."""
    now = utcnow()
    rows = [
        {
            "order_id": order.id,
            "sku": line.sku,
            "quantity": line.quantity,
            "expires_at": expires_at,
            "state": state.value,
            "created_at": now,
            "released_at": None,
        }
        for line in order.lines
    ]
    await connection.execute(insert(_holds), rows)
    order.holds.extend(
        HoldRecord(
            id=0,
            sku=line.sku,
            quantity=line.quantity,
            state=state.value,
            expires_at=expires_at,
            released_at=None,
        )
        for line in order.lines
    )


async def commit_holds(connection: AsyncConnection, order: OrderRecord) -> int:
    """Turn the order's HELD rows into COMMITTED (the stock is sold); returns how many moved."""
    held = [hold for hold in order.holds if hold.state == HoldState.HELD]
    if not held:
        return 0
    await connection.execute(
        update(_holds)
        .where(_holds.c.order_id == order.id, _holds.c.state == HoldState.HELD.value)
        .values(state=HoldState.COMMITTED.value)
    )
    for hold in held:
        hold.state = HoldState.COMMITTED.value
    return len(held)


async def release_holds(
    connection: AsyncConnection, order: OrderRecord, states: Iterable[HoldState] = (HoldState.HELD,)
) -> int:
    """Give the stock of the order's holds in ``states`` back to ``available``; returns units."""
    wanted = {HoldState(state).value for state in states}
    released = [hold for hold in order.holds if hold.state in wanted]
    if not released:
        return 0
    quantities: dict[str, int] = defaultdict(int)
    for hold in released:
        quantities[hold.sku] += hold.quantity
    back = _per_sku(dict(quantities))
    await connection.execute(
        update(_stock).where(_stock.c.sku.in_(list(quantities))).values(available=_stock.c.available + back)
    )
    now = utcnow()
    await connection.execute(
        update(_holds)
        .where(_holds.c.order_id == order.id, _holds.c.state.in_(sorted(wanted)))
        .values(state=HoldState.RELEASED.value, released_at=now)
    )
    for hold in released:
        hold.state, hold.released_at = HoldState.RELEASED.value, now
    return sum(quantities.values())


async def restock_returned(
    connection: AsyncConnection, order: OrderRecord, quantities: dict[str, int]
) -> int:
    """Put units of a delivered order that came back (SKU -> units) on sale again; returns units.

    The units leave the order's COMMITTED holds and join ``available``, so received = available +
    held + committed still holds. A hold row keeps a positive quantity (its CHECK): a hold returned
    whole becomes RELEASED; one returned in part keeps the rest and a RELEASED row of the returned
    units is added beside it, so the order's holds still add up to what it bought. Only what is
    committed can come back: a SKU the order holds no (more) sold units of is left out.
    """
    now = utcnow()
    back: dict[str, int] = defaultdict(int)
    for sku, wanted in sorted(quantities.items()):
        for hold in [
            h for h in order.holds if h.sku.lower() == sku.lower() and h.state == HoldState.COMMITTED
        ]:
            take = min(hold.quantity, wanted)
            if take <= 0:
                break
            if take == hold.quantity:
                await connection.execute(
                    update(_holds)
                    .where(_holds.c.id == hold.id, _holds.c.state == HoldState.COMMITTED.value)
                    .values(state=HoldState.RELEASED.value, released_at=now)
                )
                hold.state, hold.released_at = HoldState.RELEASED.value, now
            else:
                await connection.execute(
                    update(_holds).where(_holds.c.id == hold.id).values(quantity=_holds.c.quantity - take)
                )
                expires_at = hold.expires_at or now
                inserted = await connection.execute(
                    insert(_holds).values(
                        order_id=order.id,
                        sku=hold.sku,
                        quantity=take,
                        expires_at=expires_at,
                        state=HoldState.RELEASED.value,
                        created_at=now,
                        released_at=now,
                    )
                )
                hold.quantity -= take
                order.holds.append(
                    HoldRecord(
                        id=int(inserted.lastrowid),
                        sku=hold.sku,
                        quantity=take,
                        state=HoldState.RELEASED.value,
                        expires_at=expires_at,
                        released_at=now,
                    )
                )
            back[hold.sku] += take
            wanted -= take
    if back:
        await connection.execute(
            update(_stock)
            .where(_stock.c.sku.in_(list(back)))
            .values(available=_stock.c.available + _per_sku(dict(back)))
        )
    return sum(back.values())


class StockLevel(NamedTuple):
    """One SKU's counters after a receipt."""

    available: int
    received: int


async def book_receipt(connection: AsyncConnection, sku: str, quantity: int) -> StockLevel:
    """Book ``quantity`` received units of ``sku`` (an existing item) in the caller's transaction:
    a receipt row, and ``available`` and ``received`` up by as much; returns the counters after.

    A relative UPDATE in the database, so concurrent receipts and reservations never lose units.
    An item without a stock row (e.g. created by a seed) gets one. A total past the column's range
    raises the driver's out-of-range error.
    """
    await connection.execute(insert(_receipts).values(sku=sku, quantity=quantity, received_at=utcnow()))
    result = await connection.execute(
        update(_stock)
        .where(_stock.c.sku == sku)
        .values(available=_stock.c.available + quantity, received=_stock.c.received + quantity)
    )
    if result.rowcount == 0:
        await connection.execute(insert(_stock).values(sku=sku, available=quantity, received=quantity))
    row = (
        await connection.execute(select(_stock.c.available, _stock.c.received).where(_stock.c.sku == sku))
    ).one()
    return StockLevel(row.available, row.received)


async def repair_available(connection: AsyncConnection, sku: str, available: int) -> None:
    """Set ``available`` of ``sku`` to what the stock ledger says it should be (reconciliation's
    repair; the caller holds the stock row's lock and has checked the value is not negative)."""
    await connection.execute(update(_stock).where(_stock.c.sku == sku).values(available=available))
