"""reconcile: check the stock ledger of every SKU, log and count drift, store the report."""

from __future__ import annotations

import structlog
from prometheus_client import Counter, Gauge

from messaging.queues import RECONCILE
from models.reconcile import reconcile, report_row
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)

DRIFT_FOUND = Counter("orders_stock_drift_found_total", "SKUs found drifting by reconciliation")
DRIFTING_SKUS = Gauge("orders_stock_drifting_skus", "SKUs drifting at the last reconciliation")


async def reconcile_stock(runtime: Runtime, repair: bool = False) -> int:
    """Run one reconciliation (repairing only when asked) and store its report; returns the drift count."""
    async with runtime.uow() as uow:
        checked, drifts = await reconcile(uow.session, repair=repair)
        uow.session.add(report_row(checked, drifts, repaired=repair))
        await uow.commit()
    for drift in drifts:
        log.warning(
            "reconcile.drift", sku=drift.ledger.sku, drift=drift.ledger.drift, detail=drift.describe()
        )
    DRIFT_FOUND.inc(len(drifts))
    DRIFTING_SKUS.set(sum(1 for drift in drifts if not drift.repaired))
    log.info("reconcile.done", skus_checked=checked, drifting=len(drifts), repaired=repair)
    return len(drifts)


reconcile_actor = step_actor(RECONCILE, reconcile_stock, max_retries=3)
