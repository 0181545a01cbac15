"""SIGTERM: the gateway finishes what it started and refuses the rest; a worker finishes its
messages and hands the others (prefetched and delayed) back to RabbitMQ; the scheduler stops.
Nothing is lost, and each process exits 0 well before a platform's SIGKILL (about 30 s).

Signals go to the whole process group, as a PaaS stops a container, and a second SIGTERM follows
(the supervisor forwarding it): neither may cut a graceful stop short. Every wait is a condition
polled with a deadline.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import urllib.parse
import uuid

import aiohttp
import dramatiq
import pika
import pytest
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import func, select

from messaging.queues import EXPIRE
from models.db import create_engine, create_sessionmaker
from models.tables import Order, OutboxMessage
from schedules.election import fleet_of
from tests.support import isolation
from tests.support.api import Api
from tests.support.fleet import answers_ok, fleet_environment
from tests.support.isolation import management, own_database, own_vhost
from tests.support.polling import eventually, eventually_sync
from tests.support.processes import signal_group, start

#: What a platform allows between SIGTERM and SIGKILL is about 30 s; the fleet promises 10.
EXIT_DEADLINE_SECONDS = 10.0


@pytest.fixture
def environment(run_name, tmp_path):
    name = f"{run_name}_{uuid.uuid4().hex[:6]}"
    with own_database(name) as database_url, own_vhost(name) as broker_url:
        yield fleet_environment(
            database_url=database_url,
            broker_url=broker_url,
            redis_url=isolation.REDIS_URL,
            workdir=tmp_path,
            ADMIN_TOKEN="shutdown-admin-token",
            HOLD_SECONDS="4",
            MAX_UNPAID_ORDERS="1000",
            WORKER_PROCESSES="1",
            WORKER_THREADS="4",
        )


def terminate_like_a_platform(process: subprocess.Popen) -> float:
    """SIGTERM to the whole group, then once more (a forwarding supervisor); returns when sent."""
    signal_group(process, signal.SIGTERM)
    sent_at = time.monotonic()
    signal_group(process, signal.SIGTERM)
    return sent_at


def exit_within_deadline(process: subprocess.Popen, signalled_at: float) -> tuple[int, float]:
    """The exit code and the seconds it took after the signal; fails past the deadline."""
    remaining = EXIT_DEADLINE_SECONDS - (time.monotonic() - signalled_at)
    try:
        code = process.wait(timeout=max(remaining, 0.1))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {EXIT_DEADLINE_SECONDS:.0f}s after SIGTERM") from None
    return code, time.monotonic() - signalled_at


def log_text(path) -> str:
    return path.read_text(errors="replace")


async def count(env, model, *where) -> int:
    engine = create_engine(env["DATABASE_URL"], pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            return await session.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        await engine.dispose()


def vhost_of(env) -> str:
    return urllib.parse.unquote(env["BROKER_URL"].rsplit("/", 1)[1])


def queue_stats(env, queue: str) -> dict:
    return management(
        "GET",
        f"/api/queues/{urllib.parse.quote(vhost_of(env), safe='')}/{urllib.parse.quote(queue, safe='')}",
    )  # type: ignore[return-value]


def ready_messages(env, queue: str) -> int:
    """Messages ready in ``queue`` right now (a passive declare: no statistics lag)."""
    connection = pika.BlockingConnection(pika.URLParameters(env["BROKER_URL"]))
    try:
        return connection.channel().queue_declare(queue=queue, passive=True).method.message_count
    finally:
        connection.close()


def start_gateway(environment, tmp_path) -> tuple[subprocess.Popen, str]:
    """The ``web`` process on its own, once it answers; and its URL."""
    web = start("web", environment, tmp_path / "web.log")
    url = f"http://127.0.0.1:{environment['PORT']}"
    try:
        eventually_sync(lambda: answers_ok(f"{url}/healthz"), timeout=30, what="the gateway")
    except AssertionError:
        signal_group(web, signal.SIGKILL)
        raise
    return web, url


async def test_gateway_finishes_in_flight_requests_and_refuses_new_ones(environment, tmp_path):
    web, url = start_gateway(environment, tmp_path)
    try:
        async with aiohttp.ClientSession() as client:
            api = Api(client, url, environment["ADMIN_TOKEN"])
            sku = await api.item(stock=1000)
            token = await api.customer()

            async def order():
                try:
                    status, body, _ = await api.order(token, {sku: 1})
                    return status, body.get("id") if isinstance(body, dict) else None
                except aiohttp.ClientError:
                    return "refused", None

            requests = [asyncio.ensure_future(order()) for _ in range(60)]
            # Stop it once the burst is being served: the first order is committed.
            await eventually(lambda: count(environment, Order), timeout=30, what="the first order committed")
            signalled_at = terminate_like_a_platform(web)
            answers = await asyncio.gather(*requests)
            late_status, _ = await order()
        exit_code, _ = exit_within_deadline(web, signalled_at)
    finally:
        signal_group(web, signal.SIGKILL)

    statuses = [status for status, _ in answers]
    accepted = [order_id for status, order_id in answers if status == 202]
    assert exit_code == 0
    assert set(statuses) <= {202, "refused"} and accepted, statuses
    assert late_status == "refused"
    # Every order the gateway accepted was committed with its reserve message.
    assert await count(environment, Order, Order.id.in_(accepted)) == len(accepted)
    assert await count(
        environment,
        OutboxMessage,
        OutboxMessage.order_id.in_(accepted),
        OutboxMessage.actor_name == "reserve",
    ) == len(accepted)


async def test_gateway_ends_open_event_streams_and_exits(environment, tmp_path):
    web, url = start_gateway(environment, tmp_path)
    try:
        async with aiohttp.ClientSession() as client:
            api = Api(client, url, environment["ADMIN_TOKEN"])
            sku = await api.item(stock=10)
            token = await api.customer()
            # No worker runs: the order stays PENDING, so its streams would stay open for 10 min.
            order_id = (await api.order(token, {sku: 1}))[1]["id"]
            streams = []
            for _ in range(3):
                response = await client.get(
                    f"{url}/orders/{order_id}/events", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status == 200
                first = await response.content.readuntil(b"\n\n")
                assert b'"status": "PENDING"' in first or b'"status":"PENDING"' in first
                streams.append(response)

            signalled_at = terminate_like_a_platform(web)
            # Each stream ends (end of body), rather than being cut off by the process dying.
            for response in streams:
                rest = await asyncio.wait_for(response.content.read(), timeout=EXIT_DEADLINE_SECONDS)
                assert b"event: status" not in rest
                response.release()
        exit_code, _ = exit_within_deadline(web, signalled_at)
    finally:
        signal_group(web, signal.SIGKILL)
    assert exit_code == 0
    assert '"web.stopped"' in log_text(tmp_path / "web.log")


async def test_worker_finishes_running_messages_and_hands_back_the_rest(environment, tmp_path):
    web = start("web", environment, tmp_path / "web.log")
    psp = start("psp", environment, tmp_path / "psp.log")
    workers: list[subprocess.Popen] = []
    url = f"http://127.0.0.1:{environment['PORT']}"
    try:
        eventually_sync(
            lambda: answers_ok(f"{url}/healthz") and answers_ok(f"{environment['PSP_URL']}/healthz"),
            timeout=30,
            what="gateway and provider",
        )
        async with aiohttp.ClientSession() as client:
            api = Api(client, url, environment["ADMIN_TOKEN"])
            sku = await api.item(stock=1000)
            token = await api.customer()
            # Unpaid orders: each is reserved, asks the provider, and leaves a delayed expire.
            payment = {"method": "token", "token": "pm_card_no_response"}
            ids = [(await api.order(token, {sku: 1}, payment=payment))[1]["id"] for _ in range(150)]

            workers.append(start("worker", environment, tmp_path / "worker-1.log"))

            async def some_reserved():
                return await count(environment, Order, Order.id.in_(ids), Order._status != "PENDING") >= 20

            await eventually(some_reserved, timeout=60, what="the first worker at work")
            signalled_at = terminate_like_a_platform(workers[0])
            exit_code, _ = exit_within_deadline(workers[0], signalled_at)
            done_by_first = await count(environment, Order, Order.id.in_(ids), Order._status != "PENDING")
            # What the first worker committed it also published, with confirms: no relay runs here.
            unsent_after_first = await count(environment, OutboxMessage, OutboxMessage.sent_at.is_(None))

            workers.append(start("worker", environment, tmp_path / "worker-2.log"))

            async def all_expired():
                # Reserved by one worker or the other, then expired by the delayed messages the
                # first worker held when it stopped (or the second one received).
                return await count(
                    environment,
                    Order,
                    Order.id.in_(ids),
                    Order._status == "CANCELLED",
                    Order.reason == "payment_timeout",
                ) == len(ids)

            await eventually(all_expired, timeout=90, what="every order expired")
            assert await api.available(sku) == 1000
    finally:
        for process in (web, psp, *workers):
            signal_group(process, signal.SIGKILL)

    first_log = log_text(tmp_path / "worker-1.log")
    assert exit_code == 0
    assert unsent_after_first == 0
    assert "publish_deferred" not in first_log and "Killing worker process" not in first_log
    # The first worker was stopped mid-way: what it had not done went back to RabbitMQ.
    assert 20 <= done_by_first < len(ids)


def test_worker_hands_back_thousands_of_delayed_messages_in_time(environment, tmp_path):
    held = 3000
    broker = RabbitmqBroker(url=environment["BROKER_URL"], confirm_delivery=True, middleware=[])
    try:
        broker.declare_queue(EXPIRE.queue_name)
        for _ in range(held):
            # Expiries of holds ten minutes away, for orders this database does not have.
            broker.enqueue(
                dramatiq.Message(
                    queue_name=EXPIRE.queue_name,
                    actor_name=EXPIRE.actor_name,
                    args=(),
                    kwargs={"order_id": uuid.uuid4().hex},
                    options={},
                ),
                delay=600_000,
            )
    finally:
        broker.close()
    delay_queue = f"{EXPIRE.queue_name}.DQ"
    assert ready_messages(environment, delay_queue) == held

    worker = start("worker", environment, tmp_path / "worker.log")
    try:
        eventually_sync(
            lambda: queue_stats(environment, delay_queue).get("messages_unacknowledged") == held,
            timeout=60,
            interval=0.5,
            what=f"the worker holding all {held} delayed messages",
        )
        signalled_at = terminate_like_a_platform(worker)
        exit_code, _ = exit_within_deadline(worker, signalled_at)
    finally:
        signal_group(worker, signal.SIGKILL)

    assert exit_code == 0
    assert ready_messages(environment, delay_queue) == held


async def test_scheduler_stops_promptly(environment, tmp_path):
    scheduler = start("scheduler", environment, tmp_path / "scheduler.log")
    try:
        # Started, and elected for a job: it holds that job's lock now.
        eventually_sync(
            lambda: '"scheduler.enqueued"' in log_text(tmp_path / "scheduler.log"),
            timeout=30,
            what="the scheduler elected and enqueueing",
        )
        signalled_at = terminate_like_a_platform(scheduler)
        exit_code, _ = exit_within_deadline(scheduler, signalled_at)
    finally:
        signal_group(scheduler, signal.SIGKILL)
    assert exit_code == 0
    assert '"scheduler.stopped"' in log_text(tmp_path / "scheduler.log")
    # It gave up its elections: the next scheduler of this fleet need not wait out their hold.
    client = redis.Redis.from_url(environment["REDIS_URL"])
    try:
        assert client.keys(f"scheduler:lock:{fleet_of(environment['DATABASE_URL'])}:*") == []
    finally:
        client.close()
