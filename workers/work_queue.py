"""The order in which a worker process's threads take the messages it has prefetched.

dramatiq orders its in-process work queue by actor priority first and arrival second, so a
lower-priority message waits as long as any higher-priority one is there: under sustained load
(a flash sale) customer emails never went out until the load was over. Here an actor's
``priority`` is instead a number of milliseconds it may yield: a message is due at its arrival
plus its priority, and the earliest due runs first. Order steps (priority 0) run in arrival
order; a follow-up lets order steps that arrive up to its allowance after it go first, and is
then taken whatever else is waiting, so it can be late by about that allowance but never starve.
"""

from __future__ import annotations

import heapq
import itertools
from queue import PriorityQueue
from typing import Any

from dramatiq import Middleware

_NS_PER_MS = 1_000_000


class DeadlineWorkQueue(PriorityQueue):
    """A drop-in for the worker's ``PriorityQueue`` of dramatiq work items, earliest due first."""

    def _init(self, maxsize: int) -> None:
        self.queue: list[tuple[int, int, Any]] = []
        self._arrivals = itertools.count()

    def _put(self, item: Any) -> None:
        due = item._queued_time + item.priority * _NS_PER_MS
        heapq.heappush(self.queue, (due, next(self._arrivals), item))

    def _get(self) -> Any:
        return heapq.heappop(self.queue)[2]


class YieldingPriorities(Middleware):
    """Gives the worker a :class:`DeadlineWorkQueue` before its threads and consumers start."""

    def before_worker_boot(self, broker, worker) -> None:
        worker.work_queue = DeadlineWorkQueue()
