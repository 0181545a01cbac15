"""The fleet's invariants, checked against the database by tests, reconciliation and fault runs.

- per SKU: received = available + held + committed (stock is conserved exactly; committed counts
  the holds of archived orders too, kept in ``stock.committed_archived``);
- per order: at most one kept charge, whatever number of payment attempts it had: a captured
  payment whose refunds (asked for or confirmed) give back less than it captured; an attempt the
  customer replaced and that succeeded anyway is refunded in full, so it is no kept charge;
- per payment: its refunds (asked for or confirmed) never add up to more than it captured, and
  only a captured payment has any;
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

#: Refunds that give money back or are about to: the provider confirmed them or was asked.
_TAKING = (RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value)


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


async def _money_violations(session: AsyncSession) -> list[str]:
    """Orders keeping more than one charge, and payments refunded beyond what they captured."""
    taken = (
        select(Refund.payment_id, func.sum(Refund.amount_cents).label("cents"))
        .where(Refund.status.in_(_TAKING))
        .group_by(Refund.payment_id)
        .subquery()
    )
    refunded = func.coalesce(taken.c.cents, 0)
    captured = Payment._status.in_([s.value for s in CAPTURED])
    payments = select(
        Payment.order_id, Payment.id, Payment._status, Payment.amount_cents, refunded
    ).outerjoin(taken, taken.c.payment_id == Payment.id)
    overdrawn = await session.execute(
        payments.where(or_(and_(~captured, refunded > 0), refunded > Payment.amount_cents))
    )
    problems = [
        f"payment {payment_id} of order {order_id} ({status}): refunds of {cents} for {amount} captured"
        for order_id, payment_id, status, amount, cents in overdrawn
    ]
    kept = func.count()
    rows = await session.execute(
        select(Payment.order_id, kept)
        .outerjoin(taken, taken.c.payment_id == Payment.id)
        .where(captured, refunded < Payment.amount_cents)
        .group_by(Payment.order_id)
        .having(kept > 1)
    )
    problems += [f"order {order_id}: {n} charges kept" for order_id, n in rows]
    return problems
