"""archive: move orders finished for longer than ARCHIVE_AFTER_SECONDS into the archive tables."""

from __future__ import annotations

import structlog

from messaging.queues import ARCHIVE
from models.archive import archive_finished
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


async def archive_orders(runtime: Runtime) -> int:
    """The scheduled run: archive everything due (bounded, the next tick takes the rest)."""
    moved = await archive_finished(
        runtime.sessionmaker, runtime.settings.archive_after_seconds, max_batches=50
    )
    if moved:
        log.info("archive.done", orders=moved)
    return moved


archive = step_actor(ARCHIVE, archive_orders, max_retries=3)
