"""The module ``dramatiq`` loads: the RabbitMQ broker and middleware of a worker process.

``dramatiq workers.broker actors`` imports this first, then the actors. The broker object only
records settings here; connections open when the worker starts consuming.
"""

from __future__ import annotations

import os

from config import settings_or_exit
from workers import worker_metrics

# dramatiq's Prometheus middleware serves the metrics of all worker processes from files in one
# folder (workers/worker_metrics.py). The steps' own counters join them only if prometheus_client
# sees this folder before it is first imported, hence before anything else.
SETTINGS = settings_or_exit()
worker_metrics.prepare(SETTINGS)

import asyncio  # after the environment above, on purpose

import dramatiq
import structlog
import uvloop
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.common import dq_name
from dramatiq.middleware import AsyncIO, CurrentMessage, Middleware
from dramatiq.middleware.prometheus import Prometheus

from config import Settings
from config.logging import configure_logging
from messaging.outbox import declare_events_exchange
from messaging.queues import EXPIRE
from messaging.rabbitmq import FleetBroker, fleet_broker
from workers.runtime import Runtime, build_runtime
from workers.shutdown import stop_once_on_sigterm
from workers.steps import set_runtime_provider
from workers.work_queue import YieldingPriorities

log = structlog.get_logger(__name__)

#: How often, in milliseconds, the consumer of `expire`'s delay queue looks for messages that fell
#: due while no new message arrived (dramatiq's default for every consumer is 1000). A quiet queue
#: otherwise releases a hold up to a second late. Only this consumer wakes this often: waking all
#: of them cost about a tenth of the throughput under load (GIL hand-offs in every process).
#: dramatiq's own ``dramatiq_worker_timeout`` wins when set.
EXPIRY_CHECK_MS = 100


class PromptExpiry(Middleware):
    """Shortens the idle timeout of the consumer of `expire`'s delay queue, as its thread starts."""

    def after_consumer_thread_boot(self, broker, thread):
        if thread.queue_name == dq_name(EXPIRE.queue_name) and "dramatiq_worker_timeout" not in os.environ:
            thread.worker_timeout = EXPIRY_CHECK_MS


class StepRuntime(Middleware):
    """Builds the per-process :class:`Runtime` on first use and closes it at shutdown."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.broker: FleetBroker | None = None
        self.runtime: Runtime | None = None
        self._lock: asyncio.Lock | None = None

    async def get(self) -> Runtime:
        """The process's runtime, created on the event loop the first time a step needs it."""
        if self.runtime is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self.runtime is None:
                    assert self.broker is not None, "the broker is set before any message arrives"
                    # dramatiq closes its broker itself, once its threads have stopped.
                    self.runtime = build_runtime(self.settings, self.broker, owns_broker=False)
        return self.runtime

    def after_worker_boot(self, broker, worker):
        self.broker = broker
        set_runtime_provider(self.get)
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop = type(loop_thread.loop)
            log.info("worker.event_loop", loop=f"{loop.__module__}.{loop.__qualname__}")
        try:
            # Declared by the fleet, so services can bind their queues before the first event.
            declare_events_exchange(broker.channel, self.settings.events_exchange)
        except Exception:
            log.warning(
                "events.exchange_declare_failed", exchange=self.settings.events_exchange, exc_info=True
            )

    def after_worker_shutdown(self, broker, worker):
        # Runs before AsyncIO's own hook (this middleware is added first), so the loop is alive.
        loop_thread = get_event_loop_thread()
        if self.runtime is not None and loop_thread is not None:
            loop_thread.run_coroutine(self.runtime.close())
            self.runtime = None


class WorkerMetrics(Prometheus):
    """dramatiq's Prometheus middleware, served on the fleet's own port by
    :func:`workers.worker_metrics.serve`, where a taken port is a warning, not a dead server."""

    @property
    def forks(self):
        return [worker_metrics.serve]


def create_broker(settings: Settings) -> FleetBroker:
    """A confirming RabbitMQ broker with the fleet's middleware (runtime before the event loop)."""
    broker = fleet_broker(settings)
    broker.add_middleware(WorkerMetrics())
    broker.add_middleware(PromptExpiry())
    broker.add_middleware(YieldingPriorities())
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(StepRuntime(settings))
    broker.add_middleware(AsyncIO())
    return broker


def use_uvloop() -> None:
    """Make uvloop's the event loop that ``asyncio.new_event_loop`` creates in this process.

    dramatiq's AsyncIO middleware creates the loop its thread runs, where every step runs, with
    ``asyncio.new_event_loop()`` as the worker boots: after this, that loop is a ``uvloop.Loop``.
    """
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _load() -> FleetBroker:
    settings = SETTINGS
    configure_logging(settings, "worker")
    stop_once_on_sigterm()
    use_uvloop()
    return create_broker(settings)


broker = _load()
dramatiq.set_broker(broker)
