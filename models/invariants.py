"""The fleet's invariants, checked against the database by tests, reconciliation and fault runs.

- per SKU: received = available + held + committed (stock is conserved exactly; committed counts
  the holds of archived orders too, kept in ``stock.committed_archived``);
- per payment: its refunds (confirmed and in flight) never add up to more than it captured, only a
  captured payment has any, and ``refunded_cents`` is the sum of the confirmed ones;
- per order: at most one charge kept (a captured payment not being refunded in full: a replaced
  attempt that succeeded anyway is refunded whole);
- every order past its deadline has left the states in which a step is still due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.clock import utcnow
from models.state import CAPTURED, HoldState, OrderStatus, RefundStatus
from models.tables import Order, Payment, Refund, ReservedStock, Stock

_TAKEN = (RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value)


@dataclass(frozen=True)
class StockLedger:
    sku: str
    received: int
    available: int
    held: int
    committed: int
    committed_archived: int = 0

    @property
    def drift(self) -> int:
        """Units unaccounted for (positive: missing; negative: counted twice)."""
        return self.received - (self.available + self.held + self.committed + self.committed_archived)

    @property
    def expected_available(self) -> int:
        """What ``available`` should be if the ledger of holds and receipts is right."""
        return self.received - self.held - self.committed - self.committed_archived


async def stock_ledgers(session: AsyncSession, skus: list[str] | None = None) -> list[StockLedger]:
    """Every SKU's (or only ``skus``') received, available, held and committed units.

    One statement, so InnoDB reads stock and holds from the same snapshot.
    """
    held = func.coalesce(
        func.sum(case((ReservedStock.state == HoldState.HELD, ReservedStock.quantity), else_=0)), 0
    )
    committed = func.coalesce(
        func.sum(case((ReservedStock.state == HoldState.COMMITTED, ReservedStock.quantity), else_=0)), 0
    )
    holds = (
        select(ReservedStock.sku, held.label("held"), committed.label("committed"))
        .group_by(ReservedStock.sku)
        .subquery()
    )
    query = (
        select(
            Stock.sku,
            Stock.received,
            Stock.available,
            func.coalesce(holds.c.held, 0),
            func.coalesce(holds.c.committed, 0),
            Stock.committed_archived,
        )
        .outerjoin(holds, holds.c.sku == Stock.sku)
        .order_by(Stock.sku)
    )
    if skus is not None:
        query = query.where(Stock.sku.in_(skus))
    rows = await session.execute(query)
    return [StockLedger(sku, int(r), int(a), int(h), int(c), int(x)) for sku, r, a, h, c, x in rows]


async def overdue_orders(session: AsyncSession, grace_seconds: float) -> list[tuple[str, str]]:
    """Orders still PENDING, or AWAITING_PAYMENT past their hold, ``grace_seconds`` after their deadline.

    A PENDING order's deadline is its creation (reserving takes milliseconds); an unpaid one's
    is its hold's expiry.
    """
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    rows = await session.execute(
        select(Order.id, Order._status).where(
            or_(
                and_(Order._status == OrderStatus.PENDING, Order.created_at < cutoff),
                and_(Order._status == OrderStatus.AWAITING_PAYMENT, Order.hold_expires_at < cutoff),
            )
        )
    )
    return [(order_id, status) for order_id, status in rows]


async def _money_violations(session: AsyncSession) -> list[str]:
    """Refunds beyond what a payment captured, miscounted, or of an uncaptured payment; and orders
    keeping more than one charge."""
    taken = func.coalesce(func.sum(case((Refund.status.in_(_TAKEN), Refund.amount_cents), else_=0)), 0)
    confirmed = func.coalesce(
        func.sum(case((Refund.status == RefundStatus.SUCCEEDED.value, Refund.amount_cents), else_=0)), 0
    )
    refunds = (
        select(Refund.payment_id, taken.label("taken"), confirmed.label("confirmed"))
        .group_by(Refund.payment_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Payment.order_id,
            Payment.id,
            Payment._status,
            Payment.amount_cents,
            Payment.refunded_cents,
            func.coalesce(refunds.c.taken, 0),
            func.coalesce(refunds.c.confirmed, 0),
        ).outerjoin(refunds, refunds.c.payment_id == Payment.id)
    )
    problems: list[str] = []
    kept: dict[str, int] = {}
    captured = {status.value for status in CAPTURED}
    for order_id, payment_id, status, amount, refunded_cents, taken_cents, confirmed_cents in rows:
        if taken_cents > amount:
            problems.append(f"payment {payment_id}: refunds of {taken_cents} exceed the {amount} captured")
        if confirmed_cents != refunded_cents:
            problems.append(
                f"payment {payment_id}: refunded_cents {refunded_cents} != confirmed {confirmed_cents}"
            )
        if taken_cents and status not in captured:
            problems.append(f"payment {payment_id}: refunds of a payment that is {status}")
        if status in captured and taken_cents < amount:
            kept[order_id] = kept.get(order_id, 0) + 1
    problems += [f"order {order_id}: {count} charges kept" for order_id, count in kept.items() if count > 1]
    return problems


async def invariant_violations(
    session: AsyncSession, deadline_grace_seconds: float | None = None
) -> list[str]:
    """A readable line per broken invariant; empty when all hold.

    With ``deadline_grace_seconds`` also every order overdue by more than that is reported.
    """
    problems = [
        f"stock {ledger.sku}: received {ledger.received} != available {ledger.available} + held "
        f"{ledger.held} + committed {ledger.committed + ledger.committed_archived}"
        for ledger in await stock_ledgers(session)
        if ledger.drift != 0 or ledger.available < 0
    ]
    problems += await _money_violations(session)
    if deadline_grace_seconds is not None:
        problems += [
            f"order {order_id}: still {status} past its deadline"
            for order_id, status in await overdue_orders(session, deadline_grace_seconds)
        ]
    return problems
