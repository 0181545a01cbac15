"""1. Ceiling: how many messages per second a no-op Dramatiq actor handles here.

Same RabbitMQ, same broker and middleware as the fleet (:mod:`bench.ceiling_worker` imports
``workers.broker``), same ``--processes``/``--threads``, in a vhost of its own. The queue is filled
first, then the workers start; the rate is taken between 5% and 100% of the messages done, so
process start-up is not counted.

The same run gives what one message costs at the least, for :mod:`bench.floor`: the queue is
filled with publisher confirms, one message at a time as the outbox sends them, and the CPU of the
publisher (this process) and of RabbitMQ is taken over each slice of the fill (the median slice
counts); the CPU of the workers and of RabbitMQ over the timed part of the drain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dramatiq
import redis

from bench.procs import CpuMeter, process_tree
from config import load_settings
from messaging.rabbitmq import fleet_broker
from tests.support.fleet import ROOT, free_port

QUEUE = "bench_noop"
COUNTER_KEY = "bench:ceiling:done"


#: Messages per slice of the fill whose CPU is taken; the median slice is the figure, so that a
#: moment of another job on this shared machine does not count as the cost of a message.
SLICE = 1000


def _fill(broker_url: str, count: int, queue_type: str) -> dict[str, float]:
    """Publish ``count`` no-op messages with confirms; the CPU ms per message they took, by role
    (the median over slices of :data:`SLICE` messages)."""
    # The queue declared as the workers will declare it (QUEUE_TYPE), or RabbitMQ refuses one of them.
    broker = fleet_broker(load_settings({"BROKER_URL": broker_url, "QUEUE_TYPE": queue_type}), middleware=[])
    slices: list[dict[str, float]] = []
    try:
        broker.declare_queue(QUEUE)
        for first in range(0, count, SLICE):
            size = min(SLICE, count - first)
            cpu = CpuMeter(None)
            cpu.start()
            for _ in range(size):
                broker.enqueue(
                    dramatiq.Message(queue_name=QUEUE, actor_name=QUEUE, args=(), kwargs={}, options={})
                )
            cpu.stop()
            slices.append(_per_message(cpu, size, publisher="bench"))
        # Make sure RabbitMQ has them all before the clock starts.
        deadline = time.monotonic() + 60
        while broker.get_queue_message_counts(QUEUE)[0] < count:
            if time.monotonic() > deadline:
                raise RuntimeError("ceiling: RabbitMQ did not take the messages")
            time.sleep(0.05)
    finally:
        broker.close()
    return sorted(slices, key=lambda figures: sum(figures.values()))[len(slices) // 2]


def _per_message(cpu: CpuMeter, count: int, **rename: str) -> dict[str, float]:
    """RabbitMQ's and the named processes' CPU ms per message (``role=meter role``)."""
    seconds = {
        role: cpu.seconds.get(source, 0.0) for role, source in {**rename, "rabbitmq": "rabbitmq"}.items()
    }
    return {role: round(value * 1000 / count, 4) for role, value in seconds.items()}


def measure(
    *,
    broker_url: str,
    redis_url: str,
    processes: int,
    threads: int,
    messages: int,
    workdir: Path,
    log,
    queue_type: str = "classic",
) -> dict[str, object]:
    """Fill the queue with ``messages`` no-op messages, start the workers, time them."""
    counter = redis.Redis.from_url(redis_url)
    counter.delete(COUNTER_KEY)
    started = time.monotonic()
    publish_ms = _fill(broker_url, messages, queue_type)
    log(
        f"ceiling: {messages} messages queued with confirms in {time.monotonic() - started:.1f}s "
        f"(CPU ms per message {publish_ms}); starting {processes}x{threads} workers"
    )
    (workdir / "ceiling-prometheus").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "BROKER_URL": broker_url,
        "QUEUE_TYPE": queue_type,
        "BENCH_COUNTER_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "dramatiq_prom_port": str(free_port()),
        "dramatiq_prom_db": str(workdir / "ceiling-prometheus"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log_file = open(workdir / "ceiling.log", "ab")  # noqa: SIM115 (the worker writes to it until it stops)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "bench.ceiling_worker",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cpu = CpuMeter(lambda: {"worker": process_tree(worker.pid)})
    try:
        first_mark = max(1, messages // 20)
        t_first = t_last = None
        deadline = time.monotonic() + 120
        while True:
            done = int(counter.get(COUNTER_KEY) or 0)
            now = time.monotonic()
            if t_first is None and done >= first_mark:
                t_first, done_first = now, done
                cpu.start()
            if done >= messages:
                t_last = now
                cpu.stop()
                log(
                    f"ceiling: all done {t_last - started:.1f}s after the start "
                    f"(5% mark at {t_first - started:.1f}s)"
                )
                break
            if worker.poll() is not None:
                raise RuntimeError(
                    f"ceiling: the dramatiq worker exited early; see {workdir / 'ceiling.log'}"
                )
            if now > deadline:
                raise RuntimeError(f"ceiling: only {done} of {messages} messages handled in time")
            time.sleep(0.005)
    finally:
        stopping = time.monotonic()
        try:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        except ProcessLookupError:
            pass
        log_file.close()
        counter.delete(COUNTER_KEY)
        counter.close()
        log(f"ceiling: workers stopped in {time.monotonic() - stopping:.1f}s")
    rate = (messages - done_first) / (t_last - t_first) if t_last > t_first else None
    consume_ms = _per_message(cpu, messages - done_first, worker="worker")
    log(f"ceiling: CPU ms per message consumed {consume_ms}")
    return {
        "messages": messages,
        "processes": processes,
        "threads": threads,
        "msgs_per_s": round(rate, 1) if rate else None,
        "cpu_ms_per_message": {"publish": publish_ms, "consume": consume_ms},
    }
