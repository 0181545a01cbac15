"""The workers' count of order status changes, served with their other metrics.

Counted when a step's transaction has committed (through the live-status notifier, which the unit
of work calls then), so a rolled-back move counts nothing. The gateway counts the moves it makes
itself (customer cancellations, fulfilment) under the same name in its own ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter

STATUS_CHANGES = Counter(
    "orders_status_changes_total", "Orders moved into each status by the steps", ["status"]
)


def count_status_change(status: str) -> None:
    """Count one committed move of an order into ``status``."""
    STATUS_CHANGES.labels(status).inc()
