"""The no-op actor of the ceiling measurement, on the fleet's own broker and middleware.

Run by :mod:`bench.ceiling` as ``dramatiq bench.ceiling_worker --processes P --threads T`` with
``BROKER_URL`` pointing at a vhost of the bench's own: ``workers.broker`` builds exactly the
broker the fleet's workers use (RabbitMQ with publisher confirms, Prometheus, CurrentMessage,
the step runtime and the asyncio loop), and the actor below does nothing at all.

Each process counts what it handled in memory and adds the count to a Redis key every 20 ms from
a side thread, so counting costs the measured actor nothing.
"""

from __future__ import annotations

import os
import threading
import time

import dramatiq
import redis

from bench.ceiling import COUNTER_KEY, QUEUE
from workers.broker import broker  # noqa: F401  (dramatiq finds the broker here)

_done = 0
_lock = threading.Lock()


@dramatiq.actor(queue_name=QUEUE, actor_name=QUEUE, max_retries=0)
def bench_noop() -> None:
    """Nothing: the cost measured is dramatiq's and RabbitMQ's alone."""
    global _done
    with _lock:
        _done += 1


def _flush_forever() -> None:
    global _done
    client = redis.Redis.from_url(os.environ["BENCH_COUNTER_URL"])
    while True:
        time.sleep(0.02)
        with _lock:
            count, _done = _done, 0
        if count:
            client.incrby(COUNTER_KEY, count)


if os.environ.get("BENCH_COUNTER_URL"):
    threading.Thread(target=_flush_forever, name="bench-counter", daemon=True).start()
