"""``GET /orders/{id}/events``: the current status, each change, and the end after a final status.

Changes are made the way the gateway and workers make them: ``uow.move()`` in a unit of work of
the test's own that announces them through a :class:`StatusNotifier` on the real Redis. Every
read of the stream has a deadline; nothing waits a fixed time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import aiohttp
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.orders import status_stream
from gateway.orders.nudges import Nudges
from messaging.live_status import StatusNotifier, channel, create_redis
from models.state import OrderStatus, Reason
from tests.support.gateway_calls import customer, move, place
from tests.support.polling import eventually

# Nothing listens on port 1: connecting fails at once, as with Redis down.
DEAD_REDIS = "redis://127.0.0.1:1/0"
# Shorter than the stream's 5 s safety re-read, so an event within it was brought by the nudge.
NUDGED_WITHIN = 4.0
DEADLINE = 10.0


@pytest_asyncio.fixture
async def redis(settings):
    client = create_redis(settings.redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def notifier(settings):
    """Announces changes the tests make, as a worker's unit of work does."""
    notifier = StatusNotifier(create_redis(settings.redis_url))
    yield notifier
    await notifier.close()


async def move_to(
    sessionmaker,
    order_id: str,
    status: OrderStatus,
    reason: Reason | None = None,
    *,
    notifier: StatusNotifier | None = None,
) -> None:
    """Change the order's status in a transaction of its own, as a worker step would."""
    await move(sessionmaker, order_id, [(status, reason)], notifier=notifier)


async def next_event(response, timeout: float = DEADLINE) -> dict | None:
    """The next event of the stream as {"event", "data"} (comments skipped); None once it ended."""

    async def read() -> dict | None:
        fields: dict[str, str] = {}
        while True:
            raw = await response.content.readline()
            if not raw:
                assert not fields, f"the stream ended inside an event: {fields!r}"
                return None
            line = raw.decode().rstrip("\r\n")
            if not line:
                if fields:
                    return {"event": fields.get("event"), "data": json.loads(fields["data"])}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    return await asyncio.wait_for(read(), timeout)


async def open_stream(client, order_id: str, headers: dict[str, str]):
    response = await client.get(f"/orders/{order_id}/events", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    return response


async def test_stream_reports_changes_and_ends_after_a_final_status(client, admin, sessionmaker, notifier):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    response = await open_stream(client, order_id, auth)

    first = await next_event(response)
    assert first["event"] == "status"
    assert first["data"]["id"] == order_id
    assert (first["data"]["status"], first["data"]["reason"]) == ("PENDING", None)
    assert first["data"]["at"].endswith("Z")

    await move_to(sessionmaker, order_id, OrderStatus.AWAITING_PAYMENT, notifier=notifier)
    second = await next_event(response, NUDGED_WITHIN)
    assert second["data"]["status"] == "AWAITING_PAYMENT"

    await move_to(sessionmaker, order_id, OrderStatus.CANCELLED, Reason.CUSTOMER_CANCELLED, notifier=notifier)
    last = await next_event(response, NUDGED_WITHIN)
    assert (last["data"]["status"], last["data"]["reason"]) == ("CANCELLED", "customer_cancelled")
    assert last["data"]["at"] >= second["data"]["at"]

    # A final status ends the stream: the body completes.
    assert await next_event(response) is None
    assert response.content.at_eof()


async def test_nudges_without_a_change_never_repeat_a_status(client, admin, sessionmaker, notifier, redis):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    response = await open_stream(client, order_id, auth)
    assert (await next_event(response))["data"]["status"] == "PENDING"

    for _ in range(3):  # stray or duplicate nudges: the order is re-read, but nothing changed
        await redis.publish(channel(order_id), "PENDING")
    await move_to(sessionmaker, order_id, OrderStatus.CANCELLED, Reason.ADMIN_CANCELLED, notifier=notifier)

    assert (await next_event(response, NUDGED_WITHIN))["data"]["status"] == "CANCELLED"
    assert await next_event(response) is None


async def test_a_final_order_streams_its_status_once_and_ends(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    await move_to(sessionmaker, order_id, OrderStatus.REJECTED, Reason.OUT_OF_STOCK)

    response = await open_stream(client, order_id, admin)  # the operator may follow any order

    only = await next_event(response)
    assert (only["data"]["status"], only["data"]["reason"]) == ("REJECTED", "out_of_stock")
    assert await next_event(response) is None


async def test_without_redis_the_stream_polls_the_database(settings, admin, sessionmaker):
    async with TestClient(
        TestServer(create_app(dataclasses.replace(settings, redis_url=DEAD_REDIS)))
    ) as client:
        auth = await customer(client)
        order_id = await place(client, admin, auth)
        response = await open_stream(client, order_id, auth)
        assert (await next_event(response))["data"]["status"] == "PENDING"

        # No notifier: with Redis gone, nothing could announce the change anyway.
        await move_to(sessionmaker, order_id, OrderStatus.AWAITING_PAYMENT)
        assert (await next_event(response, NUDGED_WITHIN))["data"]["status"] == "AWAITING_PAYMENT"
        await move_to(sessionmaker, order_id, OrderStatus.CANCELLED, Reason.PAYMENT_TIMEOUT)
        assert (await next_event(response, NUDGED_WITHIN))["data"]["status"] == "CANCELLED"
        assert await next_event(response) is None


async def test_a_lost_nudge_is_made_up_for_by_the_periodic_reread(client, admin, sessionmaker, monkeypatch):
    monkeypatch.setattr(status_stream, "RECHECK_SECONDS", 0.3)
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    response = await open_stream(client, order_id, auth)
    assert (await next_event(response))["data"]["status"] == "PENDING"

    await move_to(sessionmaker, order_id, OrderStatus.CANCELLED, Reason.CUSTOMER_CANCELLED)  # no nudge sent

    assert (await next_event(response))["data"]["status"] == "CANCELLED"
    assert await next_event(response) is None


async def test_keepalive_comments_and_the_time_cap(client, admin, monkeypatch):
    monkeypatch.setattr(status_stream, "KEEPALIVE_SECONDS", 0.2)
    monkeypatch.setattr(status_stream, "MAX_STREAM_SECONDS", 1.0)
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    response = await open_stream(client, order_id, auth)

    # The order never changes: the stream sends its status, comments, and ends at the cap.
    body = (await asyncio.wait_for(response.content.read(), DEADLINE)).decode()

    assert body.startswith("event: status\ndata: ")
    assert body.count("event: status") == 1
    assert ": keepalive\n\n" in body


async def test_losing_redis_while_listening_switches_to_polling(redis):
    async with Nudges(redis, uuid.uuid4().hex) as nudges:
        assert not nudges.polling
        # Drop the subscription's connection and make its reconnect fail, as when Redis goes down.
        connection = nudges._pubsub.connection
        connection.port = 1
        await connection.disconnect()

        # A nudge may have been lost with the connection: the order must be read again at once.
        assert await nudges.wait(1.0) is True
        assert nudges.polling
        # From now on the database is polled every half second.
        assert await nudges.wait(0.0) is False
        assert await asyncio.wait_for(nudges.wait(1.0), timeout=2) is True


async def test_only_the_owner_or_the_operator_may_follow_an_order(client, admin):
    owner, stranger = await customer(client), await customer(client)
    order_id = await place(client, admin, owner)

    theirs = await client.get(f"/orders/{order_id}/events", headers=stranger)
    anonymous = await client.get(f"/orders/{order_id}/events")
    unknown = await client.get(f"/orders/{uuid.uuid4().hex}/events", headers=owner)
    head = await client.head(f"/orders/{order_id}/events", headers=owner)

    assert theirs.status == 404 and theirs.content_type == "application/problem+json"
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert unknown.status == 404
    assert head.status == 405


@pytest_asyncio.fixture(params=["test_server", "like_production"])
async def any_server(request, settings, unused_tcp_port_factory):
    """A client of the gateway on the test server, which cancels a handler whose client hangs up,
    and on a runner as ``gateway.main`` serves it, which does not (a stream must notice by itself)."""
    if request.param == "test_server":
        async with TestClient(TestServer(create_app(settings))) as client:
            yield client
        return
    port = unused_tcp_port_factory()
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
            yield session
    finally:
        await runner.cleanup()


async def test_a_client_that_hangs_up_leaves_no_subscription(any_server, admin, redis):
    client = any_server
    auth = await customer(client)
    order_id = await place(client, admin, auth)

    async def subscribers() -> int:
        [(_, count)] = await redis.pubsub_numsub(channel(order_id))
        return count

    response = await open_stream(client, order_id, auth)
    assert (await next_event(response))["data"]["status"] == "PENDING"
    assert await subscribers() == 1

    response.close()

    await eventually(lambda: _zero(subscribers), timeout=5, what="the stream's subscription to end")


async def _zero(probe) -> bool:
    return await probe() == 0
