"""What the operator sees of stock reconciliation: the latest report the ``reconcile`` step wrote."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.http.problems import Problem
from gateway.operations.schemas import Drift
from gateway.operations.schemas import ReconciliationReport as ReportDocument
from models.clock import isoformat
from models.tables import ReconciliationReport


async def latest_report(session: AsyncSession) -> ReconciliationReport | None:
    """The newest report, or None before the first run."""
    # Ids grow with every run, so the primary key finds the newest without an index on created_at.
    return await session.scalar(
        select(ReconciliationReport).order_by(ReconciliationReport.id.desc()).limit(1)
    )


def report_document(report: ReconciliationReport | None) -> ReportDocument:
    """The ``GET /admin/reconciliation`` document; a 404 problem when there is no report yet."""
    if report is None:
        raise Problem(
            404, "no reconciliation has run yet; the scheduler starts one every RECONCILE_EVERY_SECONDS"
        )
    return ReportDocument(
        id=report.id,
        created_at=isoformat(report.created_at),
        skus_checked=report.skus_checked,
        drift_count=report.drift_count,
        repaired=report.repaired,
        # Written by models.reconcile.Drift.as_dict, so every entry has a Drift's fields.
        drift=msgspec.convert(report.details, list[Drift]),
    )
