"""``POST /orders/{id}/ship`` and ``/deliver``: the operator's moves, checked by the state machine."""

from __future__ import annotations

import asyncio
import uuid

from messaging.live_status import channel, create_redis
from models.state import OrderStatus
from tests.support.gateway_calls import customer, move, place

PROBLEMS = "https://orders.example/problems/"


async def placed(client, admin, sessionmaker, auth) -> str:
    """A PLACED order, moved there the way reserve and settle would."""
    order_id = await place(client, admin, auth)
    await move(sessionmaker, order_id, [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.PLACED, None)])
    return order_id


async def test_a_placed_order_is_shipped_then_delivered(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await placed(client, admin, sessionmaker, auth)

    shipped = await client.post(f"/orders/{order_id}/ship", headers=admin)
    assert shipped.status == 200, await shipped.text()
    assert (await shipped.json())["status"] == "SHIPPED"
    delivered = await client.post(f"/orders/{order_id}/deliver", headers=admin)
    assert delivered.status == 200, await delivered.text()

    body = await delivered.json()
    assert (body["id"], body["status"], body["reason"]) == (order_id, "DELIVERED", None)
    assert [h["status"] for h in body["history"]] == [
        "PENDING",
        "AWAITING_PAYMENT",
        "PLACED",
        "SHIPPED",
        "DELIVERED",
    ]
    # The operator reads any order; the owner sees the same history.
    for headers in (admin, auth):
        seen = await client.get(f"/orders/{order_id}", headers=headers)
        assert seen.status == 200
        assert (await seen.json())["history"] == body["history"]


async def test_shipping_is_announced_on_the_live_status_channel(client, admin, sessionmaker, settings):
    order_id = await placed(client, admin, sessionmaker, await customer(client))
    redis = create_redis(settings.redis_url)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(channel(order_id))

        assert (await client.post(f"/orders/{order_id}/ship", headers=admin)).status == 200

        async def announced() -> bytes:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    return message["data"]

        assert await asyncio.wait_for(announced(), timeout=5) == b"SHIPPED"
    finally:
        await pubsub.aclose()
        await redis.aclose()


async def test_shipping_a_pending_order_is_a_conflict(client, admin):
    order_id = await place(client, admin, await customer(client))

    response = await client.post(f"/orders/{order_id}/ship", headers=admin)

    assert response.status == 409
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"] == PROBLEMS + "illegal-transition"
    assert problem["order_status"] == "PENDING"
    assert "PENDING" in problem["detail"] and "PLACED" in problem["detail"]


async def test_delivering_twice_is_a_conflict_the_second_time(client, admin, sessionmaker):
    order_id = await placed(client, admin, sessionmaker, await customer(client))
    assert (await client.post(f"/orders/{order_id}/ship", headers=admin)).status == 200

    first = await client.post(f"/orders/{order_id}/deliver", headers=admin)
    second = await client.post(f"/orders/{order_id}/deliver", headers=admin)

    assert (first.status, second.status) == (200, 409)
    problem = await second.json()
    assert problem["type"] == PROBLEMS + "illegal-transition" and problem["order_status"] == "DELIVERED"
    history = (await (await client.get(f"/orders/{order_id}", headers=admin)).json())["history"]
    assert [h["status"] for h in history].count("DELIVERED") == 1


async def test_fulfilment_needs_the_admin_token(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await placed(client, admin, sessionmaker, auth)

    for action in ("ship", "deliver"):
        as_customer = await client.post(f"/orders/{order_id}/{action}", headers=auth)
        anonymous = await client.post(f"/orders/{order_id}/{action}")
        unknown = await client.post(f"/orders/{uuid.uuid4().hex}/{action}", headers=admin)

        # As for every admin endpoint: a customer's valid token is 403, no credentials 401.
        assert as_customer.status == 403 and as_customer.content_type == "application/problem+json"
        assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert unknown.status == 404 and unknown.content_type == "application/problem+json"
    assert (await (await client.get(f"/orders/{order_id}", headers=auth)).json())["status"] == "PLACED"
