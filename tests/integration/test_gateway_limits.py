"""Limits that protect the shop from one client: failed sign-ins (Redis) and unpaid orders (the database).

Each test runs a gateway of its own with low limits. Sign-in counters live in a Redis database
other runs share and are keyed by email and client address, so every test uses fresh emails and
sends from loopback addresses of its own (127.x.y.z, bound as the connection's source address) or
names fresh clients in X-Forwarded-For, and deletes the counters it made. Windows are never waited
for: a test shortens a counter's lifetime in Redis instead. Customer tokens outside the sign-in
tests are issued directly.
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

from config import load_settings
from gateway.accounts.sign_in_limits import address_key, email_key
from gateway.app import create_app
from gateway.http.auth import issue_token
from models.state import OrderStatus
from models.tables import Order
from tests.support.gateway_calls import move
from tests.support.polling import eventually

PASSWORD = "correct horse battery"
TOO_MANY_ATTEMPTS = "https://orders.example/problems/too-many-attempts"
TOO_MANY_UNPAID = "https://orders.example/problems/too-many-unpaid-orders"
WINDOW = 900


def fresh_address() -> str:
    """A loopback address no other test sends from (Linux routes all of 127.0.0.0/8 to lo)."""
    a, b, c = secrets.token_bytes(3)
    return f"127.{100 + a % 150}.{b}.{max(c, 2)}"


def fresh_client_address() -> str:
    """An address for X-Forwarded-For (198.18.0.0/15, the benchmarking range), fresh per call."""
    a, b = secrets.token_bytes(2)
    return f"198.{18 + a % 2}.{b}.{secrets.randbelow(253) + 2}"


def new_email() -> str:
    return f"limit-{uuid.uuid4().hex[:12]}@example.com"


def limits(account: int, address: int) -> dict:
    """Setting changes for a gateway with these failure limits."""
    return {
        "auth_max_failures_per_account": account,
        "auth_max_failures_per_address": address,
        "auth_failure_window_seconds": WINDOW,
    }


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
async def redis_client(settings):
    client = redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def counters(redis_client):
    """Names of the sign-in counters a test makes; they are deleted afterwards."""
    keys: list[str] = []
    yield keys
    if keys:
        await redis_client.delete(*keys)


async def sign_up(server: TestServer, email: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.make_url("/accounts"), json={"email": email, "name": "Limit", "password": PASSWORD}
        ) as response,
    ):
        assert response.status == 201, await response.text()
        return (await response.json())["id"]


async def sign_in(
    server: TestServer,
    address: str,
    email: str,
    password: str = PASSWORD,
    *,
    forwarded_for: str | None = None,
) -> aiohttp.ClientResponse:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    async with sender(address) as session:
        credentials = {"email": email, "password": password}
        async with session.post(
            server.make_url("/auth/token"), json=credentials, headers=headers
        ) as response:
            await response.read()
            return response


async def assert_locked(response: aiohttp.ClientResponse, what: str) -> int:
    """Check a 429 sign-in answer naming ``what`` is locked ("account" or "address").

    Returns its Retry-After.
    """
    assert response.status == 429, response.status
    assert response.content_type == "application/problem+json"
    problem = await response.json(content_type=None)
    assert problem["type"] == TOO_MANY_ATTEMPTS and problem["status"] == 429
    assert problem["title"] and f"this {what} is locked" in problem["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    assert f"retry in {retry_after} seconds" in problem["detail"]
    return retry_after


def statuses(responses) -> list[int]:
    return [response.status for response in responses]


# -- sign-in: successes never count ------------------------------------------------------------


async def test_twenty_customers_signing_in_at_once_from_one_address_all_get_in(settings, counters):
    # The shipped limits, and everyone behind one address (a shop's frontend server, an office NAT).
    defaults = load_settings({})
    address, emails = fresh_address(), [new_email() for _ in range(20)]
    counters += [address_key(address), *map(email_key, emails)]
    async with gateway(
        settings, **limits(defaults.auth_max_failures_per_account, defaults.auth_max_failures_per_address)
    ) as server:
        await asyncio.gather(*(sign_up(server, email) for email in emails))
        answers = await asyncio.gather(*(sign_in(server, address, email) for email in emails))

    assert statuses(answers) == [200] * 20


async def test_successes_from_one_address_never_count_however_low_the_limits(
    settings, counters, redis_client
):
    address, emails = fresh_address(), [new_email() for _ in range(20)]
    counters += [address_key(address), *map(email_key, emails)]
    async with gateway(settings, **limits(account=1, address=1)) as server:
        for email in emails:
            await sign_up(server, email)
        answers = [await sign_in(server, address, email) for email in emails]

    assert statuses(answers) == [200] * 20
    assert int(await redis_client.get(address_key(address)) or 0) == 0


async def test_one_customer_signs_in_as_often_as_they_like(settings, counters):
    address, email = fresh_address(), new_email()
    counters += [address_key(address), email_key(email)]
    async with gateway(settings, **limits(account=3, address=3)) as server:
        await sign_up(server, email)
        answers = [await sign_in(server, address, email) for _ in range(25)]

    assert statuses(answers) == [200] * 25


# -- sign-in: failures lock the account ----------------------------------------------------------


async def test_failures_lock_the_account_even_for_the_right_password(settings, counters, redis_client):
    email, other_email = new_email(), new_email()
    address, elsewhere = fresh_address(), fresh_address()
    counters += [email_key(email), email_key(other_email), address_key(address), address_key(elsewhere)]
    async with gateway(settings, **limits(account=3, address=100)) as server:
        await sign_up(server, email)
        await sign_up(server, other_email)

        # However the email is spelt, it is one account.
        failures = [
            await sign_in(server, address, spelling, "wrong password")
            for spelling in (email, email.upper(), f"  {email.title()} ")
        ]
        right_password = await sign_in(server, elsewhere, email)
        wrong_again = await sign_in(server, address, email, "wrong password")
        # The address that guessed still serves other accounts.
        other = await sign_in(server, address, other_email)

    assert statuses(failures) == [401, 401, 401]
    await assert_locked(right_password, "account")
    await assert_locked(wrong_again, "account")
    assert other.status == 200
    # Refused attempts were not counted: the lock is not lengthened by knocking on it.
    assert await redis_client.get(email_key(email)) == b"3"


async def test_unknown_emails_are_locked_like_accounts(settings, counters):
    address, email = fresh_address(), new_email()  # no account has this email
    counters += [email_key(email), address_key(address)]
    async with gateway(settings, **limits(account=2, address=100)) as server:
        answers = [await sign_in(server, address, email, "whatever1") for _ in range(3)]

    assert statuses(answers[:2]) == [401, 401]
    await assert_locked(answers[2], "account")


async def test_the_lock_lasts_what_is_left_of_the_window(settings, counters, redis_client):
    address, email = fresh_address(), new_email()
    counters += [email_key(email), address_key(address)]
    async with gateway(settings, **limits(account=2, address=100)) as server:
        await sign_up(server, email)
        for _ in range(2):
            assert (await sign_in(server, address, email, "wrong password")).status == 401
        assert 0 < await redis_client.ttl(email_key(email)) <= WINDOW

        # 42 seconds of the window left: so says Retry-After.
        await redis_client.expire(email_key(email), 42)
        assert await assert_locked(await sign_in(server, address, email), "account") in (41, 42)

        # The window ends: the account is open again.
        await redis_client.pexpire(email_key(email), 1)

        async def counter_gone() -> bool:
            return not await redis_client.exists(email_key(email))

        await eventually(counter_gone, what="the account's counter to expire")
        assert (await sign_in(server, address, email)).status == 200


async def test_a_success_resets_the_account_count(settings, counters):
    address, email = fresh_address(), new_email()
    counters += [email_key(email), address_key(address)]
    async with gateway(settings, **limits(account=3, address=100)) as server:
        await sign_up(server, email)
        answers = []
        for password in ["wrong password"] * 2 + [PASSWORD] + ["wrong password"] * 2 + [PASSWORD]:
            answers.append(await sign_in(server, address, email, password))
        for _ in range(3):
            answers.append(await sign_in(server, address, email, "wrong password"))
        locked = await sign_in(server, address, email)

    assert statuses(answers) == [401, 401, 200, 401, 401, 200, 401, 401, 401]
    await assert_locked(locked, "account")


async def test_parallel_guesses_cannot_outrun_the_lock(settings, counters):
    address, email = fresh_address(), new_email()
    counters += [email_key(email), address_key(address)]
    async with gateway(settings, **limits(account=3, address=100)) as server:
        await sign_up(server, email)
        answers = await asyncio.gather(*(sign_in(server, address, email, f"guess {n}") for n in range(12)))

    # Each guess takes its place in the count before its password is checked: only 3 are checked.
    assert sorted(statuses(answers)) == [401] * 3 + [429] * 9


async def test_counters_always_carry_their_expiry(settings, counters, redis_client):
    address, email = fresh_address(), new_email()
    counters += [email_key(email), address_key(address)]
    # A counter left without an expiry (written by hand, say) is given one by the next attempt.
    await redis_client.set(address_key(address), 0)
    async with gateway(settings, **limits(account=3, address=3)) as server:
        assert (await sign_in(server, address, email, "whatever1")).status == 401

    for key in (email_key(email), address_key(address)):
        assert await redis_client.get(key) == b"1"
        assert 0 < await redis_client.ttl(key) <= WINDOW


# -- sign-in: failures from one address lock the address -------------------------------------------


async def test_failures_over_many_accounts_from_one_address_lock_the_address(settings, counters):
    address, elsewhere = fresh_address(), fresh_address()
    customer, strangers = new_email(), [new_email() for _ in range(4)]  # the strangers have no accounts
    counters += [address_key(address), address_key(elsewhere), *map(email_key, [customer, *strangers])]
    async with gateway(settings, **limits(account=3, address=4)) as server:
        await sign_up(server, customer)
        # Successes in between neither count nor reset the address's failures.
        answers = []
        for stranger in strangers:
            answers.append(await sign_in(server, address, customer))
            answers.append(await sign_in(server, address, stranger, "whatever1"))
        locked = await sign_in(server, address, customer)
        from_elsewhere = await sign_in(server, elsewhere, customer)

    assert statuses(answers) == [200, 401] * 4
    await assert_locked(locked, "address")
    assert from_elsewhere.status == 200


# -- sign-in: the client address behind trusted proxies ---------------------------------------------


async def test_clients_behind_a_trusted_proxy_are_limited_apart(settings, counters, redis_client):
    proxy, email = fresh_address(), new_email()
    guesser, customer = fresh_client_address(), fresh_client_address()
    counters += [email_key(email), *map(address_key, (proxy, guesser, customer))]
    async with gateway(
        settings, trusted_proxies=(f"{proxy}/32",), **limits(account=100, address=2)
    ) as server:
        await sign_up(server, email)
        guesses = [
            await sign_in(server, proxy, email, "wrong password", forwarded_for=guesser) for _ in range(2)
        ]
        # Entries left of what the proxy appended are the client's own words: not believed.
        spoofed = await sign_in(server, proxy, email, forwarded_for=f"{customer}, {guesser}")
        served = await sign_in(server, proxy, email, forwarded_for=customer)
        still_free = await sign_in(server, proxy, email, "wrong password", forwarded_for=customer)

    assert statuses(guesses) == [401, 401]
    await assert_locked(spoofed, "address")
    assert (served.status, still_free.status) == (200, 401)
    assert await redis_client.get(address_key(guesser)) == b"2"
    assert await redis_client.get(address_key(customer)) == b"1"
    assert not await redis_client.exists(address_key(proxy))


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings, counters, redis_client):
    peer, email = fresh_address(), new_email()
    claimed = [fresh_client_address() for _ in range(3)]
    counters += [email_key(email), address_key(peer), *map(address_key, claimed)]
    # Some other network is trusted; the peer is not in it.
    async with gateway(
        settings, trusted_proxies=("192.0.2.0/24",), **limits(account=100, address=2)
    ) as server:
        await sign_up(server, email)
        answers = [
            await sign_in(server, peer, email, "wrong password", forwarded_for=address) for address in claimed
        ]

    assert statuses(answers[:2]) == [401, 401]
    await assert_locked(answers[2], "address")
    assert await redis_client.get(address_key(peer)) == b"2"
    for address in claimed:
        assert not await redis_client.exists(address_key(address))


# -- sign-in: Redis holds only what may be lost ---------------------------------------------------


async def test_without_redis_sign_in_works_without_limits(settings):
    # Nothing listens on port 1: every Redis call fails at once.
    address, email = fresh_address(), new_email()
    async with gateway(
        settings, redis_url="redis://127.0.0.1:1/15", **limits(account=1, address=1)
    ) as server:
        await sign_up(server, email)
        wrong = [await sign_in(server, address, email, "wrong password") for _ in range(3)]
        right = [await sign_in(server, address, email) for _ in range(3)]

    assert statuses(wrong) == [401, 401, 401]
    assert statuses(right) == [200, 200, 200]


# -- unpaid orders -----------------------------------------------------------------------------


async def customer(client: TestClient, settings) -> tuple[str, dict[str, str]]:
    """A new customer's account id and Authorization header (token issued directly)."""
    created = await client.post(
        "/accounts", json={"email": new_email(), "name": "Hoarder", "password": PASSWORD}
    )
    assert created.status == 201, await created.text()
    account_id = (await created.json())["id"]
    return account_id, {"Authorization": f"Bearer {issue_token(settings, account_id).access_token}"}


async def new_item(client: TestClient, admin) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    created = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": "Hot thing", "price_cents": 500}
    )
    assert created.status == 201, await created.text()
    return sku


def order_body(sku: str) -> dict:
    return {"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}}


async def test_unpaid_orders_are_capped_per_customer(settings, admin, sessionmaker):
    async with TestClient(
        TestServer(create_app(dataclasses.replace(settings, max_unpaid_orders=2)))
    ) as client:
        sku = await new_item(client, admin)
        _, auth = await customer(client, settings)
        keys = [uuid.uuid4().hex for _ in range(3)]
        first, second = [
            await client.post("/orders", headers={**auth, "Idempotency-Key": key}, json=order_body(sku))
            for key in keys[:2]
        ]
        assert (first.status, second.status) == (202, 202)
        first_id, second_id = (await first.json())["id"], (await second.json())["id"]

        refused = await client.post(
            "/orders", headers={**auth, "Idempotency-Key": keys[2]}, json=order_body(sku)
        )

        assert refused.status == 429
        assert refused.content_type == "application/problem+json"
        assert refused.headers["Retry-After"] == "60"
        problem = await refused.json()
        assert problem["type"] == TOO_MANY_UNPAID and problem["status"] == 429
        assert problem["limit"] == 2 and "at most 2" in problem["detail"]

        # A replay of an order already taken still answers with it, at the limit or not.
        replay = await client.post(
            "/orders", headers={**auth, "Idempotency-Key": keys[0]}, json=order_body(sku)
        )
        assert replay.status == 202 and (await replay.json())["id"] == first_id
        # Another customer has a limit of their own.
        _, other = await customer(client, settings)
        theirs = await client.post(
            "/orders", headers={**other, "Idempotency-Key": uuid.uuid4().hex}, json=order_body(sku)
        )
        assert theirs.status == 202

        # AWAITING_PAYMENT still counts; once an order is no longer unpaid, there is room again.
        await move(sessionmaker, second_id, [(OrderStatus.AWAITING_PAYMENT, None)])
        again = await client.post(
            "/orders", headers={**auth, "Idempotency-Key": keys[2]}, json=order_body(sku)
        )
        assert again.status == 429
        await move(sessionmaker, first_id, [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.PLACED, None)])
        room = await client.post(
            "/orders", headers={**auth, "Idempotency-Key": keys[2]}, json=order_body(sku)
        )
        assert room.status == 202, await room.text()
        # The refused attempts left nothing behind: the key made the order only once it was let through.
        assert (await room.json())["id"] not in (first_id, second_id)


async def test_the_cap_holds_when_one_customer_orders_many_times_at_once(settings, admin, sessionmaker):
    async with TestClient(
        TestServer(create_app(dataclasses.replace(settings, max_unpaid_orders=5)))
    ) as client:
        sku = await new_item(client, admin)
        account_id, auth = await customer(client, settings)

        answers = await asyncio.gather(
            *(
                client.post(
                    "/orders", headers={**auth, "Idempotency-Key": uuid.uuid4().hex}, json=order_body(sku)
                )
                for _ in range(10)
            )
        )

        statuses = sorted(answer.status for answer in answers)
        assert statuses == [202] * 5 + [429] * 5, [(a.status, await a.text()) for a in answers]
    async with sessionmaker() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Order).where(Order.account_id == account_id)
            )
            == 5
        )
