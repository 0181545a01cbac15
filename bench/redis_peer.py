"""The mechanism this design replaced: Redis keys with TTLs and a keyspace "expired" listener.

Side by side with :mod:`bench.expiry`, during the same minutes: one Redis key per hold, set with
``PXAT`` to exactly the same instant as that hold's ``expires_at``, and a subscriber on
``__keyevent@<db>__:expired`` (``notify-keyspace-events`` gets ``Ex`` for the run and is restored
afterwards) that notes when each key's event arrives. Lateness = arrival - intended expiry.

Redis sends the event when it actually deletes the key: when the key is accessed, or when its
active expiry cycle happens to sample it. Two variants run at once, each in a Redis database of
its own: "alone" (only the hold keys, next to the few keys of the bench's fleet) and "loaded"
(the same keys among 200,000 others whose TTLs run 10 to 60 minutes, as a cache's do).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

import redis.asyncio as aioredis

from bench.stats import percentile, rounded

PIPELINE = 5000


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


class Peer:
    """One variant: its database, its listener and the arrivals it saw."""

    def __init__(self, server_url: str, db: int, background_keys: int):
        self.db, self.background_keys = db, background_keys
        self.client = aioredis.from_url(f"{server_url}/{db}")
        self.arrivals: dict[bytes, float] = {}
        self.due: dict[bytes, float] = {}
        self.other_keys = 0

    async def prepare(self, log) -> None:
        if self.background_keys:
            await self.client.flushdb()
            began = time.monotonic()
            pipe = self.client.pipeline(transaction=False)
            for i in range(self.background_keys):
                # A cache's entries, living 10 to 60 minutes: none expires during the run.
                pipe.set(f"cache:{i}", b"x" * 64, px=random.randint(600_000, 3_600_000))
                if len(pipe) >= PIPELINE:
                    await pipe.execute()
            await pipe.execute()
            log(
                f"redis peer: {self.background_keys:,} cache keys with TTLs set in db {self.db} "
                f"in {time.monotonic() - began:.1f}s"
            )
        self.other_keys = await self.client.dbsize()
        self.pubsub = self.client.pubsub()
        await self.pubsub.subscribe(f"__keyevent@{self.db}__:expired")
        self.listening = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] == "message" and message["data"].startswith(b"hold:"):
                self.arrivals[message["data"]] = time.time()

    async def set_keys(self, expiries: list[datetime]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for i, expires_at in enumerate(expiries):
            key = f"hold:{i}".encode()
            self.due[key] = _epoch(expires_at)
            pipe.set(key, b"1", pxat=int(self.due[key] * 1000))
            if len(pipe) >= PIPELINE:
                await pipe.execute()
        await pipe.execute()

    async def finish(self) -> dict[str, object]:
        self.listening.cancel()
        await asyncio.gather(self.listening, return_exceptions=True)
        await self.pubsub.aclose()
        if self.background_keys:
            await self.client.flushdb()
        elif self.due:
            await self.client.delete(*self.due)
        await self.client.aclose()
        late_ms = [(self.arrivals[key] - at) * 1000 for key, at in self.due.items() if key in self.arrivals]
        return {
            "keys": len(self.due),
            "background_keys": self.other_keys,
            "delivered": len(self.arrivals),
            "p50_ms": rounded(percentile(late_ms, 0.50)),
            "p99_ms": rounded(percentile(late_ms, 0.99)),
            "max_ms": rounded(max(late_ms)) if late_ms else None,
        }


class RedisPeers:
    """Both variants, run alongside the fleet's expiry window."""

    def __init__(self, server_url: str, alone_db: int, loaded_db: int, background_keys: int):
        self.admin = aioredis.from_url(f"{server_url}/{alone_db}")
        self.alone = Peer(server_url, alone_db, 0)
        self.loaded = Peer(server_url, loaded_db, background_keys)

    async def prepare(self, log) -> None:
        self.original = (await self.admin.config_get("notify-keyspace-events")).get(
            "notify-keyspace-events", ""
        )
        await self.admin.config_set("notify-keyspace-events", "".join(sorted(set(self.original) | set("Ex"))))
        await self.loaded.prepare(log)
        await self.alone.prepare(log)

    async def set_keys(self, expiries: list[datetime]) -> None:
        await asyncio.gather(self.alone.set_keys(expiries), self.loaded.set_keys(expiries))

    def all_arrived(self) -> bool:
        return all(len(p.arrivals) >= len(p.due) for p in (self.alone, self.loaded))

    async def finish(self) -> tuple[dict, dict]:
        try:
            return await self.alone.finish(), await self.loaded.finish()
        finally:
            await self.restore()

    async def restore(self) -> None:
        """Put ``notify-keyspace-events`` back as it was (once; safe to call again)."""
        if self.admin is None:
            return
        admin, self.admin = self.admin, None
        if hasattr(self, "original"):
            await admin.config_set("notify-keyspace-events", self.original)
        await admin.aclose()
