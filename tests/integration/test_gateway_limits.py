"""Limits that protect the shop from one client: sign-in attempts (Redis) and unpaid orders (the database).

Each test runs a gateway of its own with a low limit. Sign-in counters live in this run's Redis
database and are keyed by email and client address, so every test uses fresh emails and sends
from loopback addresses of its own (127.x.y.z, bound as the connection's source address), and
deletes the counters it made. Customer tokens outside the sign-in tests are issued directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid
from contextlib import asynccontextmanager

import aiohttp
import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.sign_in_limits import address_key, email_key
from models.state import OrderStatus
from models.tables import Order
from tests.support.gateway_calls import move

PASSWORD = "correct horse battery"
TOO_MANY_ATTEMPTS = "https://orders.example/problems/too-many-attempts"
TOO_MANY_UNPAID = "https://orders.example/problems/too-many-unpaid-orders"


def fresh_address() -> str:
    """A loopback address no other test sends from (Linux routes all of 127.0.0.0/8 to lo)."""
    a, b, c = secrets.token_bytes(3)
    return f"127.{100 + a % 150}.{b}.{max(c, 2)}"


def new_email() -> str:
    return f"limit-{uuid.uuid4().hex[:12]}@example.com"


@asynccontextmanager
async def gateway(settings, **changes):
    """A gateway with ``changes`` to the run's settings, served over real HTTP."""
    async with TestServer(create_app(dataclasses.replace(settings, **changes))) as server:
        yield server


@asynccontextmanager
async def sender(address: str):
    """An HTTP client whose connections come from ``address``."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0))) as session:
        yield session


@pytest.fixture
async def counters(settings):
    """Names of the rate-limit keys a test makes; they are deleted afterwards."""
    keys: list[str] = []
    yield keys
    client = redis.from_url(settings.redis_url)
    try:
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def sign_up(server: TestServer, email: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/accounts"),
                                json={"email": email, "name": "Limit", "password": PASSWORD}) as response:
            assert response.status == 201, await response.text()
            return (await response.json())["id"]


async def sign_in(server: TestServer, address: str, email: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
    async with sender(address) as session:
        credentials = {"email": email, "password": password}
        async with session.post(server.make_url("/auth/token"), json=credentials) as response:
            await response.read()
            return response


async def assert_too_many(response: aiohttp.ClientResponse) -> int:
    """Check a 429 sign-in answer; returns its Retry-After."""
    assert response.status == 429
    assert response.content_type == "application/problem+json"
    problem = await response.json(content_type=None)
    assert problem["type"] == TOO_MANY_ATTEMPTS and problem["status"] == 429
    assert problem["title"] and "3" in problem["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


# -- sign-in attempts --------------------------------------------------------------------------


async def test_attempts_for_one_email_are_limited_whatever_the_address_or_outcome(settings, counters):
    email = new_email()
    addresses = [fresh_address() for _ in range(5)]
    counters += [email_key(email), *map(address_key, addresses)]
    async with gateway(settings, auth_attempts_per_minute=3) as server:
        await sign_up(server, email)

        # Successes count as much as failures, and the email counts however it is spelt.
        first = await sign_in(server, addresses[0], email, "wrong password")
        second = await sign_in(server, addresses[1], email.upper())
        third = await sign_in(server, addresses[2], email)
        fourth = await sign_in(server, addresses[3], email)
        fifth = await sign_in(server, addresses[4], email.title(), "wrong password")
        # The address that was refused for that email still serves another one.
        other_email = new_email()
        counters.append(email_key(other_email))
        await sign_up(server, other_email)
        other = await sign_in(server, addresses[3], other_email)

    assert [first.status, second.status, third.status] == [401, 200, 200]
    await assert_too_many(fourth)
    await assert_too_many(fifth)
    assert other.status == 200


async def test_attempts_from_one_address_are_limited_across_emails(settings, counters):
    address, elsewhere = fresh_address(), fresh_address()
    emails = [new_email() for _ in range(4)]
    counters += [address_key(address), address_key(elsewhere), *map(email_key, emails)]
    async with gateway(settings, auth_attempts_per_minute=3) as server:
        for email in emails[1:]:
            await sign_up(server, email)

        answers = [await sign_in(server, address, email) for email in emails]  # emails[0] has no account
        refused = await sign_in(server, address, emails[1])
        from_elsewhere = await sign_in(server, elsewhere, emails[2])

    assert [answer.status for answer in answers[:3]] == [401, 200, 200]
    await assert_too_many(answers[3])
    await assert_too_many(refused)
    assert from_elsewhere.status == 200


async def test_retry_after_is_the_time_left_in_the_window(settings, counters):
    address, email = fresh_address(), new_email()
    counters += [address_key(address), email_key(email)]
    async with gateway(settings, auth_attempts_per_minute=3) as server:
        for _ in range(3):
            assert (await sign_in(server, address, email)).status == 401
        refused = await sign_in(server, address, email)

    retry_after = await assert_too_many(refused)
    client = redis.from_url(settings.redis_url)
    try:
        ttl = await client.ttl(email_key(email))
        assert await client.get(email_key(email)) == b"4"  # the refused attempt counted too
    finally:
        await client.aclose()
    assert 0 < ttl <= retry_after <= 60


async def test_without_redis_sign_in_works_without_a_limit(settings):
    # Nothing listens on port 1: every Redis call fails at once.
    address, email = fresh_address(), new_email()
    async with gateway(settings, auth_attempts_per_minute=1, redis_url="redis://127.0.0.1:1/15") as server:
        await sign_up(server, email)
        answers = [await sign_in(server, address, email) for _ in range(3)]
        wrong = await sign_in(server, address, email, "wrong password")

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert wrong.status == 401


# -- unpaid orders -----------------------------------------------------------------------------


async def customer(client: TestClient, settings) -> tuple[str, dict[str, str]]:
    """A new customer's account id and Authorization header (token issued directly)."""
    created = await client.post("/accounts", json={"email": new_email(), "name": "Hoarder", "password": PASSWORD})
    assert created.status == 201, await created.text()
    account_id = (await created.json())["id"]
    return account_id, {"Authorization": f"Bearer {issue_token(settings, account_id)['access_token']}"}


async def new_item(client: TestClient, admin) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    created = await client.post("/items", headers=admin, json={"sku": sku, "name": "Hot thing", "price_cents": 500})
    assert created.status == 201, await created.text()
    return sku


def order_body(sku: str) -> dict:
    return {"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}}


async def test_unpaid_orders_are_capped_per_customer(settings, admin, sessionmaker):
    async with TestClient(TestServer(create_app(dataclasses.replace(settings, max_unpaid_orders=2)))) as client:
        sku = await new_item(client, admin)
        _, auth = await customer(client, settings)
        keys = [uuid.uuid4().hex for _ in range(3)]
        first, second = [await client.post("/orders", headers={**auth, "Idempotency-Key": key}, json=order_body(sku))
                         for key in keys[:2]]
        assert (first.status, second.status) == (202, 202)
        first_id, second_id = (await first.json())["id"], (await second.json())["id"]

        refused = await client.post("/orders", headers={**auth, "Idempotency-Key": keys[2]}, json=order_body(sku))

        assert refused.status == 429
        assert refused.content_type == "application/problem+json"
        assert refused.headers["Retry-After"] == "60"
        problem = await refused.json()
        assert problem["type"] == TOO_MANY_UNPAID and problem["status"] == 429
        assert problem["limit"] == 2 and "at most 2" in problem["detail"]

        # A replay of an order already taken still answers with it, at the limit or not.
        replay = await client.post("/orders", headers={**auth, "Idempotency-Key": keys[0]}, json=order_body(sku))
        assert replay.status == 202 and (await replay.json())["id"] == first_id
        # Another customer has a limit of their own.
        _, other = await customer(client, settings)
        theirs = await client.post("/orders", headers={**other, "Idempotency-Key": uuid.uuid4().hex},
                                   json=order_body(sku))
        assert theirs.status == 202

        # AWAITING_PAYMENT still counts; once an order is no longer unpaid, there is room again.
        await move(sessionmaker, second_id, [(OrderStatus.AWAITING_PAYMENT, None)])
        again = await client.post("/orders", headers={**auth, "Idempotency-Key": keys[2]}, json=order_body(sku))
        assert again.status == 429
        await move(sessionmaker, first_id, [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.PLACED, None)])
        room = await client.post("/orders", headers={**auth, "Idempotency-Key": keys[2]}, json=order_body(sku))
        assert room.status == 202, await room.text()
        # The refused attempts left nothing behind: the key made the order only once it was let through.
        assert (await room.json())["id"] not in (first_id, second_id)


async def test_the_cap_holds_when_one_customer_orders_many_times_at_once(settings, admin, sessionmaker):
    async with TestClient(TestServer(create_app(dataclasses.replace(settings, max_unpaid_orders=5)))) as client:
        sku = await new_item(client, admin)
        account_id, auth = await customer(client, settings)

        answers = await asyncio.gather(*(
            client.post("/orders", headers={**auth, "Idempotency-Key": uuid.uuid4().hex}, json=order_body(sku))
            for _ in range(10)))

        statuses = sorted(answer.status for answer in answers)
        assert statuses == [202] * 5 + [429] * 5, [(a.status, await a.text()) for a in answers]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order).where(
            Order.account_id == account_id)) == 5
