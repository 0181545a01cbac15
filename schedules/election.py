"""Electing one scheduler per tick with a Redis lock that expires by itself.

A PaaS may run two schedulers. Each tick, each of them tries ``SET key NX PX``: the one that
sets it enqueues, the others skip. With Redis down every scheduler runs the job; the steps it
enqueues are idempotent, so the only cost is duplicate messages.

The lock belongs to one fleet: its key names the fleet's database (the source of truth, so
schedulers sharing it are one fleet), and two fleets sharing a Redis database (a staging fleet
next to production, a test fleet next to a running one) never skip each other's jobs. A scheduler
that stops gives up the locks it holds, so another one takes over at its next tick instead of
after the lock's hold.
"""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlsplit

import redis.asyncio as redis
import structlog

log = structlog.get_logger(__name__)

_INSTANCE = uuid.uuid4().hex

# Delete the lock only if this scheduler still holds it (it may have expired and been taken).
_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def fleet_of(database_url: str) -> str:
    """A short name for the fleet that ``database_url``'s database belongs to (no credentials)."""
    parts = urlsplit(database_url)
    where = f"{parts.hostname}:{parts.port or 3306}{parts.path}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def _key(fleet: str, job: str) -> str:
    return f"scheduler:lock:{fleet}:{job}"


async def elected(client: redis.Redis | None, fleet: str, job: str, hold_seconds: float) -> bool:
    """True when this scheduler should run ``job`` of ``fleet`` this tick."""
    if client is None:
        return True
    try:
        won = await client.set(_key(fleet, job), _INSTANCE, nx=True, px=max(int(hold_seconds * 1000), 1))
    except Exception as error:
        log.warning("scheduler.election_unavailable", job=job, error=repr(error))
        return True
    return bool(won)


async def resign(client: redis.Redis | None, fleet: str, jobs: list[str]) -> None:
    """Give up the locks this scheduler holds for ``jobs`` (at shutdown; best effort)."""
    if client is None:
        return
    try:
        for job in jobs:
            await client.eval(_RESIGN, 1, _key(fleet, job), _INSTANCE)  # type: ignore[misc]  # asyncio client
    except Exception as error:
        log.warning("scheduler.resign_failed", error=repr(error))
