"""Electing one scheduler per tick with a Redis lock that expires by itself.

A PaaS may run two schedulers. Each tick, each of them tries ``SET key NX PX``: the one that
sets it enqueues, the others skip. With Redis down every scheduler runs the job; the steps it
enqueues are idempotent, so the only cost is duplicate messages.
"""

from __future__ import annotations

import uuid

import redis.asyncio as redis
import structlog

log = structlog.get_logger(__name__)

_INSTANCE = uuid.uuid4().hex


async def elected(client: redis.Redis | None, job: str, hold_seconds: float) -> bool:
    """True when this scheduler should run ``job`` this tick."""
    if client is None:
        return True
    try:
        won = await client.set(f"scheduler:lock:{job}", _INSTANCE, nx=True, px=max(int(hold_seconds * 1000), 1))
    except Exception as error:
        log.warning("scheduler.election_unavailable", job=job, error=repr(error))
        return True
    return bool(won)
