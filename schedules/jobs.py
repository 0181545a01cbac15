"""Periodic jobs of the scheduler process; each only publishes or enqueues messages."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging.outbox import OutboxPublisher, relay_unsent
from messaging.queues import ARCHIVE, RECONCILE, Route
from messaging.sweep import sweep
from models.unit_of_work import UnitOfWork
from schedules.election import elected

log = structlog.get_logger(__name__)

SWEEP_JOB = "sweep"
#: Every job name an election is held for.
ELECTED_JOBS = [SWEEP_JOB, RECONCILE.actor_name, ARCHIVE.actor_name]


@dataclass
class JobContext:
    """What the jobs share: the database, the outbox publisher and Redis for elections."""

    sessionmaker: async_sessionmaker[AsyncSession]
    publisher: OutboxPublisher
    redis: redis.Redis | None
    #: Whose jobs these are (:func:`schedules.election.fleet_of`): elections are per fleet.
    fleet: str = "default"


async def relay_outbox(ctx: JobContext, older_than_seconds: float) -> int:
    """Republish outbox rows a crash or a broker outage left unsent (safe in every scheduler)."""
    try:
        count = await relay_unsent(ctx.sessionmaker, ctx.publisher, older_than_seconds)
    except Exception:
        log.warning("outbox.relay_failed", exc_info=True)
        return 0
    if count:
        log.info("outbox.relay_done", republished=count)
    return count


async def sweep_stuck(ctx: JobContext, period_seconds: float) -> None:
    """Re-enqueue steps for overdue holds and stuck orders (the backstop of delayed messages)."""
    if not await elected(ctx.redis, ctx.fleet, SWEEP_JOB, period_seconds * 0.8):
        return
    try:
        await sweep(ctx.sessionmaker, ctx.publisher)
    except Exception:
        log.warning("sweep.failed", exc_info=True)


async def enqueue_step(ctx: JobContext, route: Route, period_seconds: float) -> bool:
    """Enqueue one run of ``route``'s step, if this scheduler is elected for this tick."""
    if not await elected(ctx.redis, ctx.fleet, route.actor_name, period_seconds * 0.8):
        return False
    try:
        async with UnitOfWork(ctx.sessionmaker, ctx.publisher) as uow:
            uow.enqueue(route)
            await uow.commit()
    except Exception:
        log.warning("scheduler.enqueue_failed", actor=route.actor_name, exc_info=True)
        return False
    log.info("scheduler.enqueued", actor=route.actor_name)
    return True


async def enqueue_reconcile(ctx: JobContext, period_seconds: float) -> bool:
    """Ask a worker to reconcile the stock ledger."""
    return await enqueue_step(ctx, RECONCILE, period_seconds)


async def enqueue_archive(ctx: JobContext, period_seconds: float) -> bool:
    """Ask a worker to archive finished orders."""
    return await enqueue_step(ctx, ARCHIVE, period_seconds)
