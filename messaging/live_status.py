"""Live order status fan-out through Redis pub/sub: a nudge, never the truth.

After a transaction that moved orders commits, their ids are published on a per-order channel.
Listeners (the gateway's server-sent events) re-read the order from the database when nudged,
so a lost nudge or a Redis outage only delays an update; they poll the database meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import redis.asyncio as redis
import structlog

log = structlog.get_logger(__name__)

#: Redis calls must fail fast: order processing never waits on what may be lost.
REDIS_TIMEOUT_SECONDS = 0.5


def channel(order_id: str) -> str:
    """The pub/sub channel that announces status changes of one order."""
    return f"orders:{order_id}:status"


def create_redis(redis_url: str) -> redis.Redis:
    """A Redis client with short timeouts (no connection is made until first use)."""
    return redis.from_url(
        redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


class StatusNotifier:
    """Publishes "this order changed" nudges; every failure is swallowed and logged.

    ``on_change``, when given, is called with the status of each committed change first (the
    process's count of status changes for its metrics), whether Redis answers or not.
    """

    def __init__(self, client: redis.Redis | None, on_change: Callable[[str], None] | None = None):
        self._client = client
        self._on_change = on_change

    async def publish(self, changes: Iterable[tuple[str, str]]) -> None:
        """Announce ``(order_id, status)`` pairs on their channels."""
        changes = list(changes)
        if self._on_change is not None:
            for _, status in changes:
                self._on_change(status)
        if self._client is None:
            return
        for order_id, status in changes:
            try:
                await self._client.publish(channel(order_id), status)
            except Exception as error:  # Redis down: listeners fall back to polling
                log.info("live_status.unavailable", order_id=order_id, error=repr(error))
                return

    async def close(self) -> None:
        """Close the Redis connection pool."""
        if self._client is not None:
            await self._client.aclose()
