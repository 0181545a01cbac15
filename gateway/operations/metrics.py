"""Prometheus metrics of the gateway: request latency per route, and the fleet's backlog gauges.

Every request is timed into the latency histogram by :mod:`gateway.http.request_log`'s middleware,
which times it for its log line anyway.

The gauges (orders by status, unsent outbox rows and the age of the oldest, stock held awaiting
payment and the holds past their expiry, the latest stock reconciliation) are read from the
database when ``/metrics`` is scraped, and the dead letters waiting in each ``<queue>.XQ`` from
RabbitMQ, so every gateway reports the same numbers and no process has to keep them. A source
that does not answer leaves its gauges at their last known values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

import pika
import pika.exceptions
from dramatiq.common import xq_name
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import case, func, select

from config.broker_nodes import broker_nodes
from messaging.queues import step_queues
from messaging.rabbitmq import quiet_missing_queue_probes
from models.clock import utcnow
from models.state import HoldState, OrderStatus
from models.tables import Order, OutboxMessage, ReconciliationReport, ReservedStock

#: pika's timeout for reaching RabbitMQ when a scrape reads the dead-letter counts; the scrape
#: waits at most three times this for all of them, then serves the last known counts.
DEAD_LETTER_COUNT_TIMEOUT_SECONDS = 1.0
#: AMQP reply code of a passive declare of a queue that does not exist.
NOT_FOUND = 404


class GatewayMetrics:
    """The metrics of one app, in a registry of its own (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "orders_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.orders = Gauge(
            "orders_by_status", "Orders in the hot tables by status", ["status"], registry=self.registry
        )
        self.outbox_backlog = Gauge(
            "orders_outbox_unsent", "Outbox messages not yet published", registry=self.registry
        )
        self.outbox_oldest = Gauge(
            "orders_outbox_oldest_unsent_seconds",
            "Age of the oldest outbox message not yet published (0 when none waits)",
            registry=self.registry,
        )
        self.holds = Gauge(
            "orders_holds_pending_units", "Units of stock held awaiting payment", registry=self.registry
        )
        self.holds_overdue = Gauge(
            "orders_holds_overdue",
            "Holds awaiting payment past their expiry, which `expire` should have released",
            registry=self.registry,
        )
        self.holds_overdue_seconds = Gauge(
            "orders_holds_overdue_seconds",
            "How long past its expiry the most overdue hold still awaiting payment is (0 when none)",
            registry=self.registry,
        )
        self.drifting_skus = Gauge(
            "orders_reconciliation_drifting_skus",
            "SKUs the latest stored stock reconciliation found drifting and did not repair",
            registry=self.registry,
        )
        self.reconciled_at = Gauge(
            "orders_reconciliation_last_run_timestamp_seconds",
            "When the latest stored stock reconciliation ran, Unix time (0 before the first one)",
            registry=self.registry,
        )
        self.status_changes = Counter(
            "orders_status_changes_total",
            "Orders moved into each status by this gateway (customer cancellations, fulfilment)",
            ["status"],
            registry=self.registry,
        )
        self.dead_letters = Gauge(
            "orders_dead_letters",
            "Messages whose retries ran out, waiting in a dead-letter queue until "
            "DEAD_LETTER_TTL_SECONDS drops them",
            ["queue"],
            registry=self.registry,
        )
        # The histogram's child per (method, route, status), found without prometheus_client's
        # label handling on every request.
        self._latency_by_labels: dict[tuple[str, str, int], Histogram] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request, answered with ``status`` after ``seconds``, into the latency histogram."""
        key = (method, route, status)
        child = self._latency_by_labels.get(key)
        if child is None:
            child = self._latency_by_labels[key] = self.latency.labels(method, route, str(status))
        child.observe(seconds)

    def count_status_change(self, status: str) -> None:
        """Count one committed move of an order into ``status``."""
        self.status_changes.labels(status).inc()

    async def refresh(self, sessionmaker) -> None:
        """Read the backlog gauges from the database."""
        now = utcnow()
        async with sessionmaker() as session:
            counts = dict(
                (await session.execute(select(Order._status, func.count()).group_by(Order._status))).all()
            )
            # Both read along ix_outbox_unsent and ix_reserved_stock_state_expires.
            unsent, oldest_unsent = (
                await session.execute(
                    select(func.count(), func.min(OutboxMessage.created_at)).where(
                        OutboxMessage.sent_at.is_(None)
                    )
                )
            ).one()
            held, overdue, first_expiry = (
                await session.execute(
                    select(
                        func.coalesce(func.sum(ReservedStock.quantity), 0),
                        func.coalesce(func.sum(case((ReservedStock.expires_at < now, 1), else_=0)), 0),
                        func.min(ReservedStock.expires_at),
                    ).where(ReservedStock.state == HoldState.HELD)
                )
            ).one()
            latest = (
                await session.execute(
                    select(
                        ReconciliationReport.created_at,
                        ReconciliationReport.drift_count,
                        ReconciliationReport.repaired,
                    )
                    .order_by(ReconciliationReport.id.desc())
                    .limit(1)
                )
            ).one_or_none()
        for status in OrderStatus:
            self.orders.labels(status.value).set(counts.get(status.value, 0))
        self.outbox_backlog.set(unsent)
        self.outbox_oldest.set(_seconds_since(oldest_unsent, now))
        self.holds.set(held)
        self.holds_overdue.set(overdue)
        self.holds_overdue_seconds.set(_seconds_since(first_expiry, now))
        if latest is not None:
            reported_at, drift_count, repaired = latest
            self.drifting_skus.set(0 if repaired else drift_count)
            self.reconciled_at.set(reported_at.replace(tzinfo=UTC).timestamp())

    async def refresh_dead_letters(self, broker_url: str) -> None:
        """Read the depth of every step's dead-letter queue from RabbitMQ, within a short timeout."""
        loop = asyncio.get_running_loop()
        queues = [xq_name(queue) for queue in step_queues()]
        # pika blocks: on a worker thread, bounded twice (pika's own timeouts, and this wait).
        depths = await asyncio.wait_for(
            loop.run_in_executor(None, count_messages, broker_url, queues, DEAD_LETTER_COUNT_TIMEOUT_SECONDS),
            DEAD_LETTER_COUNT_TIMEOUT_SECONDS * 3,
        )
        for queue, depth in depths.items():
            self.dead_letters.labels(queue).set(depth)


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    """Seconds from ``moment`` to ``now``; 0 when there is no such moment or it is still ahead."""
    if moment is None:
        return 0.0
    return max((now - moment).total_seconds(), 0.0)


def count_messages(broker_url: str, queues: Iterable[str], timeout: float) -> dict[str, int]:
    """Messages ready in each of ``queues``, read by passive declares over AMQP (blocking).

    A passive declare neither creates nor changes a queue and needs no management plugin. A queue
    that does not exist yet holds nothing (0). ``broker_url`` may list several nodes (``;``).
    """
    nodes = []
    for url in broker_nodes(broker_url):
        parameters = pika.URLParameters(url)
        parameters.socket_timeout = parameters.stack_timeout = timeout
        parameters.blocked_connection_timeout = timeout
        parameters.connection_attempts = 1
        nodes.append(parameters)
    depths: dict[str, int] = {}
    quiet_missing_queue_probes()
    connection = pika.BlockingConnection(nodes)
    try:
        channel = connection.channel()
        for queue in queues:
            try:
                depths[queue] = channel.queue_declare(queue, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker as error:
                if error.reply_code != NOT_FOUND:
                    raise
                depths[queue] = 0
                channel = connection.channel()  # the broker closed the one that asked
    finally:
        connection.close()
    return depths
