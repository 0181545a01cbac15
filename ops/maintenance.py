"""``orders-admin reconcile | archive | redrive``: the scheduler's periodic jobs, run now by hand."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from config import Settings
from messaging.outbox import OutboxPublisher
from messaging.rabbitmq import fleet_broker
from messaging.sweep import SweepReport, sweep
from models.archive import archive_finished, count_due
from models.clock import utcnow
from models.reconcile import Drift, reconcile, report_row


@dataclass
class ReconcileOutcome:
    checked: int
    drifts: list[Drift]
    report_id: int
    repair: bool

    @property
    def remaining(self) -> list[Drift]:
        """Drift still there afterwards: all of it on a dry run, what could not be repaired otherwise."""
        return [drift for drift in self.drifts if not drift.repaired]


async def run_reconcile(sessionmaker: async_sessionmaker[AsyncSession], repair: bool) -> ReconcileOutcome:
    """Check (and with ``repair`` fix) every SKU and store the report, all in one transaction."""
    async with sessionmaker() as session, session.begin():
        checked, drifts = await reconcile(session, repair=repair)
        report = report_row(checked, drifts, repaired=repair)
        session.add(report)
        await session.flush()
    return ReconcileOutcome(checked, drifts, report.id, repair)


def render_reconcile(outcome: ReconcileOutcome) -> str:
    lines = [f"checked {outcome.checked} SKU(s): {len(outcome.drifts)} drifting"]
    lines += [f"  {drift.describe()}" for drift in outcome.drifts]
    if not outcome.repair:
        if outcome.drifts:
            lines.append("dry run: nothing changed; run with --repair to fix")
    else:
        repaired = len(outcome.drifts) - len(outcome.remaining)
        lines.append(f"repaired {repaired} SKU(s)")
        if outcome.remaining:
            lines.append(
                f"{len(outcome.remaining)} SKU(s) could not be repaired (available would go below"
                " zero): investigate the holds and receipts of those SKUs"
            )
    lines.append(f"report #{outcome.report_id} stored")
    return "\n".join(lines)


async def run_archive(
    sessionmaker: async_sessionmaker[AsyncSession], older_than_seconds: int, batch_size: int, progress: bool
) -> tuple[int, int]:
    """Archive every order finished more than ``older_than_seconds`` ago; returns (due, moved).

    ``progress`` draws a bar on stderr over the count of due orders; log lines go through the
    bar meanwhile, so they do not tear it.
    """
    async with sessionmaker() as session:
        due = await count_due(session, utcnow() - timedelta(seconds=older_than_seconds))
    if not due:
        return 0, 0
    with tqdm(total=due, unit="order", desc="archiving", file=sys.stderr, disable=not progress) as bar:
        if progress:
            with logging_redirect_tqdm():
                moved = await archive_finished(
                    sessionmaker, older_than_seconds, batch_size=batch_size, progress=bar.update
                )
        else:
            moved = await archive_finished(
                sessionmaker, older_than_seconds, batch_size=batch_size, progress=bar.update
            )
    return due, moved


#: What each case of the sweep re-enqueues (for the report).
SWEEP_CASES = {
    "hold_overdue": "holds past their expiry: expire enqueued",
    "pending_stuck": "orders stuck in PENDING: reserve enqueued",
    "payment_unrequested": "payments never requested from the provider: pay enqueued",
    "refund_unrequested": "refunds never requested from the provider: refund enqueued",
}


async def run_redrive(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> SweepReport:
    """Run the backstop sweep now, publishing through the fleet's confirming broker (BROKER_URL)."""
    broker = fleet_broker(settings, middleware=[])

    def reachable() -> None:
        broker.connection  # noqa: B018 (connects, or raises when RabbitMQ cannot be reached)
        del broker.connection

    # Checked first: with the broker down the sweep would leave its messages to the outbox relay.
    try:
        await asyncio.to_thread(reachable)
    except BaseException:
        broker.close()
        raise
    publisher = OutboxPublisher(broker, sessionmaker)
    try:
        return await sweep(sessionmaker, publisher)
    finally:
        await publisher.aclose()


def render_redrive(report: SweepReport) -> str:
    width = max(len(case) for case in [*SWEEP_CASES, *report.counts])
    lines = [
        f"  {case.ljust(width)}  {count:>5}  {SWEEP_CASES.get(case, '')}".rstrip()
        for case, count in report.counts.items()
    ]
    lines.append(f"re-enqueued {report.total} step(s)" if report.total else "nothing to re-enqueue")
    return "\n".join(lines)
