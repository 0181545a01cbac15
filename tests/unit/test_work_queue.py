"""The worker's work queue: follow-ups yield to order steps for a bounded time, never for ever."""

from __future__ import annotations

from queue import PriorityQueue

from dramatiq.worker import _WorkQueueItem

from workers.steps import FOLLOW_UP_PRIORITY
from workers.work_queue import DeadlineWorkQueue

MS = 1_000_000


def item(name: str, priority: int, arrived_ms: int) -> _WorkQueueItem:
    return _WorkQueueItem(priority, name, _queued_time=arrived_ms * MS)  # type: ignore[arg-type]


def drain(queue: PriorityQueue) -> list[str]:
    return [queue.get_nowait().message for _ in range(queue.qsize())]


def sustained_load(queue: PriorityQueue) -> list[str]:
    """An email arrives first; then an order step every 10 ms for 5 s, while threads are busy."""
    queue.put(item("email", FOLLOW_UP_PRIORITY, 0))
    for step in range(500):
        queue.put(item(f"step-{step}", 0, 1 + 10 * step))
    return drain(queue)


def test_a_follow_up_waits_at_most_its_allowance_under_sustained_load():
    order = sustained_load(DeadlineWorkQueue())
    # Only the steps that arrived within the allowance after the email went before it.
    ahead = order.index("email")
    assert ahead == len([s for s in range(500) if 1 + 10 * s <= FOLLOW_UP_PRIORITY])
    assert 0 < ahead < 500


def test_dramatiqs_own_ordering_starves_the_follow_up():
    # The reason for the deadline queue: by plain priority the email comes after every step.
    assert sustained_load(PriorityQueue())[-1] == "email"


def test_equal_priorities_run_in_arrival_order():
    queue = DeadlineWorkQueue()
    for name, arrived in (("c", 30), ("a", 10), ("b", 20)):
        queue.put(item(name, 0, arrived))
    assert drain(queue) == ["a", "b", "c"]


def test_a_follow_up_whose_time_has_come_goes_before_later_steps():
    queue = DeadlineWorkQueue()
    queue.put(item("email", FOLLOW_UP_PRIORITY, 0))
    queue.put(item("late-step", 0, FOLLOW_UP_PRIORITY + 1))
    queue.put(item("early-step", 0, 5))
    assert drain(queue) == ["early-step", "email", "late-step"]


def test_the_middleware_gives_the_worker_its_queue_before_threads_take_from_it():
    from dramatiq import Worker
    from dramatiq.brokers.stub import StubBroker

    from workers.work_queue import YieldingPriorities

    broker = StubBroker(middleware=[YieldingPriorities()])
    worker = Worker(broker, worker_threads=1, worker_timeout=10)
    worker.start()
    try:
        assert isinstance(worker.work_queue, DeadlineWorkQueue)
        assert all(thread.work_queue is worker.work_queue for thread in worker.workers)
    finally:
        worker.stop()
