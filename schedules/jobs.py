"""Periodic jobs of the scheduler process; each only publishes or enqueues messages."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schedules.sweep import sweep
from workers.outbox import OutboxPublisher, relay_unsent

log = structlog.get_logger(__name__)


async def sweep_stuck(sessionmaker: async_sessionmaker[AsyncSession], publisher: OutboxPublisher) -> None:
    """Re-enqueue steps for overdue holds and stuck orders (the backstop of delayed messages)."""
    try:
        await sweep(sessionmaker, publisher)
    except Exception:
        log.warning("sweep.failed", exc_info=True)


async def relay_outbox(sessionmaker: async_sessionmaker[AsyncSession], publisher: OutboxPublisher,
                       older_than_seconds: float) -> int:
    """Republish outbox rows a crash or a broker outage left unsent."""
    try:
        count = await relay_unsent(sessionmaker, publisher, older_than_seconds)
    except Exception:
        log.warning("outbox.relay_failed", exc_info=True)
        return 0
    if count:
        log.info("outbox.relay_done", republished=count)
    return count
