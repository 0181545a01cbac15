"""SIGTERM: the gateway finishes what it started and refuses the rest; a worker finishes its
messages and hands the others (prefetched and delayed) back to RabbitMQ. Nothing is lost."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid

import aiohttp
import pytest
from sqlalchemy import func, select

from models.db import create_engine, create_sessionmaker
from models.tables import Order, OutboxMessage
from tests.support import isolation
from tests.support.api import Api
from tests.support.fleet import fleet_environment
from tests.support.isolation import own_database, own_vhost
from tests.support.polling import eventually, eventually_sync
from tests.support.processes import signal_group, start


@pytest.fixture
def environment(run_name, tmp_path):
    name = f"{run_name}_{uuid.uuid4().hex[:6]}"
    with own_database(name) as database_url, own_vhost(name) as broker_url:
        yield fleet_environment(database_url=database_url, broker_url=broker_url, redis_url=isolation.REDIS_URL,
                                workdir=tmp_path, ADMIN_TOKEN="shutdown-admin-token", HOLD_SECONDS="4",
                                MAX_UNPAID_ORDERS="1000", WORKER_PROCESSES="1", WORKER_THREADS="4")


def answering(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


async def count(env, model, *where) -> int:
    engine = create_engine(env["DATABASE_URL"], pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            return await session.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        await engine.dispose()


async def test_gateway_finishes_in_flight_requests_and_refuses_new_ones(environment, tmp_path):
    web = start("web", environment, tmp_path / "web.log")
    url = f"http://127.0.0.1:{environment['PORT']}"
    try:
        eventually_sync(lambda: answering(f"{url}/healthz"), timeout=30, what="the gateway")
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
            await asyncio.sleep(0.05)  # let the first requests reach the server, then stop it
            signal_group(web, signal.SIGTERM)
            answers = await asyncio.gather(*requests)
            late_status, _ = await order()
        exit_code = web.wait(timeout=30)
    finally:
        signal_group(web, signal.SIGKILL)

    statuses = [status for status, _ in answers]
    accepted = [order_id for status, order_id in answers if status == 202]
    assert exit_code == 0
    assert set(statuses) <= {202, "refused"} and accepted, statuses
    assert late_status == "refused"
    # Every order the gateway accepted was committed with its reserve message.
    assert await count(environment, Order, Order.id.in_(accepted)) == len(accepted)
    assert await count(environment, OutboxMessage, OutboxMessage.order_id.in_(accepted),
                       OutboxMessage.actor_name == "reserve") == len(accepted)


async def test_worker_finishes_running_messages_and_hands_back_the_rest(environment, tmp_path):
    web = start("web", environment, tmp_path / "web.log")
    psp = start("psp", environment, tmp_path / "psp.log")
    workers: list[subprocess.Popen] = []
    url = f"http://127.0.0.1:{environment['PORT']}"
    try:
        eventually_sync(lambda: answering(f"{url}/healthz") and answering(f"{environment['PSP_URL']}/healthz"),
                        timeout=30, what="gateway and provider")
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
            signal_group(workers[0], signal.SIGTERM)
            assert workers[0].wait(timeout=60) == 0
            done_by_first = await count(environment, Order, Order.id.in_(ids), Order._status != "PENDING")

            workers.append(start("worker", environment, tmp_path / "worker-2.log"))

            async def all_expired():
                # Reserved by one worker or the other, then expired by the delayed messages the
                # first worker held when it stopped (or the second one received).
                return await count(environment, Order, Order.id.in_(ids), Order._status == "CANCELLED",
                                   Order.reason == "payment_timeout") == len(ids)

            await eventually(all_expired, timeout=90, what="every order expired")
            assert await api.available(sku) == 1000
    finally:
        for process in (web, psp, *workers):
            signal_group(process, signal.SIGKILL)

    # The first worker was stopped mid-way: what it had not done went back to RabbitMQ.
    assert 20 <= done_by_first < len(ids)
