"""Inventory reconciliation: check received = available + held + committed for every SKU.

The holds ledger (reservations and receipts) is taken as the truth: a repair sets ``available``
to what the ledger says. Without ``repair`` nothing changes; the report says what would.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.invariants import StockLedger, stock_ledgers
from models.inventory import repair_available
from models.tables import ReconciliationReport, Stock


@dataclass(frozen=True)
class Drift:
    """One SKU whose numbers do not add up, and what a repair does (or would do) about it."""

    ledger: StockLedger
    repaired: bool

    def as_dict(self) -> dict:
        return {
            **asdict(self.ledger),
            "drift": self.ledger.drift,
            "available_should_be": self.ledger.expected_available,
            "repaired": self.repaired,
        }

    def describe(self) -> str:
        ledger = self.ledger
        verb = "set" if self.repaired else "would set"
        return (
            f"{ledger.sku}: received {ledger.received} but available {ledger.available} + held {ledger.held}"
            f" + committed {ledger.committed + ledger.committed_archived} (drift {ledger.drift:+d});"
            f" {verb} available {ledger.available} -> {ledger.expected_available}"
        )


async def reconcile(session: AsyncSession, *, repair: bool = False) -> tuple[int, list[Drift]]:
    """Check every SKU (and with ``repair`` fix drift) in the caller's transaction.

    Returns how many SKUs were checked and the drifts found. A drifting SKU is re-read under its
    stock row's lock before repairing, so a reservation committing meanwhile is not undone.
    """
    ledgers = await stock_ledgers(session)
    drifts: list[Drift] = []
    for ledger in ledgers:
        if ledger.drift == 0:
            continue
        if repair:
            await session.execute(select(Stock.sku).where(Stock.sku == ledger.sku).with_for_update())
            [ledger] = await stock_ledgers(session, [ledger.sku])
            if ledger.drift == 0:
                continue
            if ledger.expected_available >= 0:
                await repair_available(await session.connection(), ledger.sku, ledger.expected_available)
                drifts.append(Drift(ledger, repaired=True))
                continue
        drifts.append(Drift(ledger, repaired=False))
    return len(ledgers), drifts


def report_row(checked: int, drifts: list[Drift], repaired: bool) -> ReconciliationReport:
    """The stored report of one reconciliation run."""
    return ReconciliationReport(
        skus_checked=checked,
        drift_count=len(drifts),
        repaired=repaired,
        details=[drift.as_dict() for drift in drifts],
    )
