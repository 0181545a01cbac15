"""The worker's work queue: follow-ups yield most of the threads to order steps, never all of them."""

from __future__ import annotations

from queue import PriorityQueue

from dramatiq.worker import _WorkQueueItem

from workers.steps import FOLLOW_UP_PRIORITY
from workers.work_queue import FOLLOW_UP_TURN, SharedWorkQueue

MS = 1_000_000


def item(name: str, priority: int, arrived_ms: int) -> _WorkQueueItem:
    return _WorkQueueItem(priority, name, _queued_time=arrived_ms * MS)  # type: ignore[arg-type]


def sustained_load(queue: PriorityQueue, steps: int = 500) -> list[str]:
    """An email arrives first, then a new order step arrives every time a thread takes one."""
    queue.put(item("email", FOLLOW_UP_PRIORITY, 0))
    queue.put(item("step-0", 0, 1))
    taken = []
    for step in range(1, steps):
        taken.append(queue.get_nowait().message)
        queue.put(item(f"step-{step}", 0, 1 + step))
    return taken + [queue.get_nowait().message for _ in range(queue.qsize())]


def test_a_follow_up_gets_its_turn_under_sustained_load():
    taken = sustained_load(SharedWorkQueue())
    assert taken.index("email") < FOLLOW_UP_TURN


def test_dramatiqs_own_ordering_starves_the_follow_up():
    # The reason for this queue: by plain priority the email waits until the load is over.
    assert sustained_load(PriorityQueue())[-1] == "email"


def test_order_steps_keep_most_of_the_threads_while_follow_ups_wait():
    queue = SharedWorkQueue()
    for n in range(100):
        queue.put(item(f"email-{n}", FOLLOW_UP_PRIORITY, n))
        queue.put(item(f"step-{n}", 0, n))
    first = [queue.get_nowait().message for _ in range(10 * FOLLOW_UP_TURN)]
    assert sum(name.startswith("email") for name in first) == 10


def test_each_class_runs_in_arrival_order_and_either_alone_has_every_thread():
    queue = SharedWorkQueue()
    for name, priority, arrived in (
        ("email-a", FOLLOW_UP_PRIORITY, 1),
        ("email-b", FOLLOW_UP_PRIORITY, 2),
        ("email-c", FOLLOW_UP_PRIORITY, 3),
    ):
        queue.put(item(name, priority, arrived))
    assert [queue.get_nowait().message for _ in range(3)] == ["email-a", "email-b", "email-c"]
    for name, arrived in (("a", 1), ("b", 2), ("c", 3)):
        queue.put(item(name, 0, arrived))
    assert [queue.get_nowait().message for _ in range(3)] == ["a", "b", "c"]


def test_the_middleware_gives_the_worker_its_queue_before_threads_take_from_it():
    from dramatiq import Worker
    from dramatiq.brokers.stub import StubBroker

    from workers.work_queue import YieldingPriorities

    broker = StubBroker(middleware=[YieldingPriorities()])
    worker = Worker(broker, worker_threads=1, worker_timeout=10)
    worker.start()
    try:
        assert isinstance(worker.work_queue, SharedWorkQueue)
        assert all(thread.work_queue is worker.work_queue for thread in worker.workers)
    finally:
        worker.stop()
