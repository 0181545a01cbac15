"""Prometheus metrics of the gateway: request latency per route, and the fleet's backlog gauges.

The gauges (orders by status, unsent outbox rows, stock held awaiting payment) are read from the
database when ``/metrics`` is scraped, so every gateway reports the same numbers and no process
has to keep them.
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram
from sqlalchemy import func, select

from gateway.keys import METRICS
from models.state import HoldState, OrderStatus
from models.tables import Order, OutboxMessage, ReservedStock


class GatewayMetrics:
    """The metrics of one app, in a registry of its own (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "orders_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route", "status"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.orders = Gauge("orders_by_status", "Orders in the hot tables by status", ["status"],
                            registry=self.registry)
        self.outbox_backlog = Gauge("orders_outbox_unsent", "Outbox messages not yet published",
                                    registry=self.registry)
        self.holds = Gauge("orders_holds_pending_units", "Units of stock held awaiting payment",
                           registry=self.registry)

    async def refresh(self, sessionmaker) -> None:
        """Read the backlog gauges from the database."""
        async with sessionmaker() as session:
            counts = dict((await session.execute(
                select(Order._status, func.count()).group_by(Order._status))).all())
            unsent = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
            held = await session.scalar(
                select(func.coalesce(func.sum(ReservedStock.quantity), 0))
                .where(ReservedStock.state == HoldState.HELD))
        for status in OrderStatus:
            self.orders.labels(status.value).set(counts.get(status.value, 0))
        self.outbox_backlog.set(unsent)
        self.holds.set(held)


def route_label(request: web.Request) -> str:
    """The route's template (``/orders/{id}``), never the raw path: ids would explode the series."""
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Time every request into the latency histogram."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        request.app[METRICS].latency.labels(request.method, route_label(request), str(status)).observe(
            time.perf_counter() - started)
