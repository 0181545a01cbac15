"""The scheduler process: runs periodic jobs on an asyncio APScheduler until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import UTC, datetime

import structlog
import uvloop
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from config import Settings, settings_or_exit
from config.logging import configure_logging
from messaging.live_status import create_redis
from messaging.outbox import OutboxPublisher
from messaging.rabbitmq import fleet_broker
from models.db import create_engine, create_sessionmaker
from schedules.election import fleet_of, resign
from schedules.jobs import (
    ELECTED_JOBS,
    JobContext,
    enqueue_archive,
    enqueue_reconcile,
    relay_outbox,
    sweep_stuck,
)

log = structlog.get_logger(__name__)

#: How often the relay looks for unsent outbox rows.
RELAY_INTERVAL_SECONDS = 2


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Schedule the jobs and run until ``stop`` is set."""
    engine = create_engine(settings.database_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    redis = create_redis(settings.redis_url)
    ctx = JobContext(
        sessionmaker=sessionmaker,
        publisher=OutboxPublisher(fleet_broker(settings, middleware=[]), sessionmaker),
        redis=redis,
        fleet=fleet_of(settings.database_url),
    )
    period = settings.reconcile_every_seconds
    now = datetime.now(UTC)
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"max_instances": 1, "coalesce": True})
    scheduler.add_job(
        relay_outbox,
        "interval",
        seconds=RELAY_INTERVAL_SECONDS,
        id="relay_outbox",
        args=(ctx, settings.outbox_relay_after_seconds),
    )
    scheduler.add_job(
        sweep_stuck, "interval", seconds=period, id="sweep_stuck", args=(ctx, period), next_run_time=now
    )
    scheduler.add_job(
        enqueue_reconcile, "interval", seconds=period, id="reconcile", args=(ctx, period), next_run_time=now
    )
    scheduler.add_job(
        enqueue_archive, "interval", seconds=period, id="archive", args=(ctx, period), next_run_time=now
    )
    scheduler.start()
    log.info("scheduler.started", jobs=[job.id for job in scheduler.get_jobs()])
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await resign(ctx.redis, ctx.fleet, ELECTED_JOBS)
        await ctx.publisher.aclose()
        await redis.aclose()
        await engine.dispose()
        log.info("scheduler.stopped")


def main() -> int:
    """Console entry point of the `scheduler` process."""
    settings = settings_or_exit()
    configure_logging(settings, "scheduler")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(settings, stop)

    uvloop.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
