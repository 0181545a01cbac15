"""The order in which a worker process's threads take the messages it has prefetched.

dramatiq orders its in-process work queue by actor priority first and arrival second, so a
lower-priority message waits as long as any higher-priority one is there: under sustained load
(a flash sale) customer emails never went out until the load was over. Here the work queue holds
two classes, each in arrival order: order steps (priority 0) and follow-ups (any priority above
0: emails, voids). While both are waiting, every :data:`FOLLOW_UP_TURN`-th message taken is a
follow-up and the others are order steps; when one class is empty the other has every thread.
Order steps thus keep most of the capacity through a burst of expiries, and a follow-up is never
starved: it waits for its turn, not for the burst to end.
"""

from __future__ import annotations

from collections import deque
from queue import PriorityQueue
from typing import Any

from dramatiq import Middleware

#: While both classes wait, one message in this many is a follow-up (a quarter of the threads).
FOLLOW_UP_TURN = 10


class SharedWorkQueue(PriorityQueue):
    """A drop-in for the worker's ``PriorityQueue`` of dramatiq work items (see the module)."""

    def _init(self, maxsize: int) -> None:
        self.steps: deque[Any] = deque()
        self.follow_ups: deque[Any] = deque()
        self._taken = 0

    def _qsize(self) -> int:
        return len(self.steps) + len(self.follow_ups)

    def _put(self, item: Any) -> None:
        # Items arrive in order, so appending keeps each class in arrival order.
        (self.follow_ups if item.priority > 0 else self.steps).append(item)

    def _get(self) -> Any:
        self._taken += 1
        if not self.steps or (self.follow_ups and self._taken % FOLLOW_UP_TURN == 0):
            return self.follow_ups.popleft()
        return self.steps.popleft()


class YieldingPriorities(Middleware):
    """Gives the worker a :class:`SharedWorkQueue` before its threads and consumers start."""

    def before_worker_boot(self, broker, worker) -> None:
        worker.work_queue = SharedWorkQueue()
