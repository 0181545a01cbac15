"""archive: move orders finished for longer than ARCHIVE_AFTER_SECONDS into the archive tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.archive import archive_batch
from models.clock import utcnow
from workers.queues import ARCHIVE
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)

BATCH_SIZE = 200


async def archive_finished(
    sessionmaker: async_sessionmaker[AsyncSession],
    older_than_seconds: int,
    *,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Archive due orders batch by batch, one transaction each; returns how many moved.

    ``progress`` is called with each batch's size (the command line draws a bar with it).
    """
    older_than = utcnow() - timedelta(seconds=older_than_seconds)
    moved = batches = 0
    while max_batches is None or batches < max_batches:
        async with sessionmaker() as session, session.begin():
            ids = await archive_batch(session, older_than, batch_size)
        if not ids:
            break
        moved += len(ids)
        batches += 1
        log.info("archive.batch", orders=len(ids), first_order_id=ids[0])
        if progress is not None:
            progress(len(ids))
    return moved


async def archive_orders(runtime: Runtime) -> int:
    """The scheduled run: archive everything due (bounded, the next tick takes the rest)."""
    moved = await archive_finished(
        runtime.sessionmaker, runtime.settings.archive_after_seconds, max_batches=50
    )
    if moved:
        log.info("archive.done", orders=moved)
    return moved


archive = step_actor(ARCHIVE, archive_orders, max_retries=3)
