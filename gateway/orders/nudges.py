"""Waiting for "this order changed" nudges on Redis pub/sub, or polling when Redis is away.

A nudge only says "look again": the status is always read from the database. So when Redis
cannot be reached (at subscribe or later) the listener does not fail; it simply looks again
every :data:`POLL_SECONDS`. It does not try Redis again: a stream lasts ten minutes at most and
the client's reconnect subscribes afresh.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

from messaging.live_status import REDIS_TIMEOUT_SECONDS, channel

log = structlog.get_logger(__name__)

#: How often the database is read instead when no nudges can arrive.
POLL_SECONDS = 0.5
# A broken socket surfaces as OSError (TimeoutError included) as well as redis' own errors.
_REDIS_ERRORS = (RedisError, OSError)


class Nudges:
    """``async with Nudges(client, order_id) as nudges``: subscribed (or polling) until the block ends."""

    def __init__(self, client: redis.Redis, order_id: str):
        self._client = client
        self._channel = channel(order_id)
        self._pubsub: Any = None  # redis.asyncio.client.PubSub while subscribed
        self._next_poll = 0.0

    @property
    def polling(self) -> bool:
        """True when Redis is unavailable and :meth:`wait` paces database polls instead."""
        return self._pubsub is None

    async def __aenter__(self) -> Nudges:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # SUBSCRIBE is only sent above; once Redis confirms it, no later publish can be missed.
            confirmation = await pubsub.get_message(timeout=REDIS_TIMEOUT_SECONDS)
            if confirmation is None or confirmation.get("type") != "subscribe":
                raise TimeoutError(f"no confirmation of the subscription, got {confirmation!r}")
        except _REDIS_ERRORS as error:
            await _close(pubsub)
            self._start_polling("live.redis_unavailable", error)
        else:
            self._pubsub = pubsub
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await _close(pubsub)

    async def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; True when the order should be read again now."""
        loop = asyncio.get_running_loop()
        if self._pubsub is None:
            pause = self._next_poll - loop.time()
            if pause > 0:
                await asyncio.sleep(min(timeout, pause))
            if loop.time() < self._next_poll:
                return False
            self._next_poll = loop.time() + POLL_SECONDS
            return True
        try:
            message = await self._pubsub.get_message(timeout=max(timeout, 0.0))
        except _REDIS_ERRORS as error:
            pubsub, self._pubsub = self._pubsub, None
            await _close(pubsub)
            self._start_polling("live.redis_lost", error)
            return True  # a nudge may have been lost with the connection: look now
        return message is not None and message.get("type") == "message"

    def _start_polling(self, event: str, error: BaseException) -> None:
        log.info(event, channel=self._channel, error=repr(error))
        self._next_poll = asyncio.get_running_loop().time() + POLL_SECONDS


async def _close(pubsub: Any) -> None:
    # Closing drops the connection, which ends the subscription on the server without a command.
    try:
        await pubsub.aclose()
    except _REDIS_ERRORS as error:
        log.info("live.pubsub_close_failed", error=repr(error))
