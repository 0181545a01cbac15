"""Taking orders through the gateway: one transaction, idempotent by key, visible to the owner only."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from models.tables import IdempotencyKey, Order, OutboxMessage, Payment
from tests.support.gateway_calls import customer
from tests.support.polling import eventually


async def item(client, admin, *, price_cents: int = 1000, currency: str = "USD") -> str:
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    response = await client.post(
        "/items",
        headers=admin,
        json={"sku": sku, "name": "Thing", "price_cents": price_cents, "currency": currency},
    )
    assert response.status == 201, await response.text()
    return sku


def with_key(auth: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**auth, "Idempotency-Key": key or uuid.uuid4().hex}


async def count(sessionmaker, model, *conditions) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*conditions))


async def test_order_is_accepted_priced_from_the_catalogue_and_queued_for_reserve(
    client, admin, sessionmaker
):
    auth = await customer(client)
    mug, shirt = await item(client, admin, price_cents=1250), await item(client, admin, price_cents=2000)

    response = await client.post(
        "/orders",
        headers=with_key(auth),
        json={
            "items": [{"sku": shirt, "quantity": 1}, {"sku": mug, "quantity": 2}],
            "payment": {"method": "token", "token": "pm_card_ok"},
            "shipping_address": {"line1": "1 Main St", "city": "Springfield"},
        },
    )

    assert response.status == 202, await response.text()
    order = await response.json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert order["status"] == "PENDING"
    assert order["reason"] is None
    assert order["total_cents"] == 4500 and order["currency"] == "USD"
    assert sorted((i["sku"], i["quantity"], i["unit_price_cents"]) for i in order["items"]) == sorted(
        [(mug, 2, 1250), (shirt, 1, 2000)]
    )
    assert order["payment"]["status"] == "PENDING" and order["payment"]["method"] == "token"
    assert [h["status"] for h in order["history"]] == ["PENDING"]
    assert order["hold_expires_at"] is None
    assert order["created_at"].endswith("Z")
    async with sessionmaker() as session:
        stored = await session.get(Order, order["id"])
        assert stored.status == "PENDING"
        payment = await session.scalar(select(Payment).where(Payment.order_id == order["id"]))
        assert (payment.amount_cents, payment.token, payment.attempt) == (4500, "pm_card_ok", 1)
        outbox = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order["id"]))
        ).all()
    assert [(m.actor_name, m.queue_name, m.kwargs) for m in outbox] == [
        ("reserve", "reserve", {"order_id": order["id"]})
    ]

    async def sent() -> bool:
        async with sessionmaker() as session:
            row = await session.get(OutboxMessage, outbox[0].id, populate_existing=True)
            return row.sent_at is not None

    await eventually(sent, timeout=10, what="the reserve message to be confirmed by RabbitMQ")


async def test_owner_reads_the_order_others_cannot(client, admin):
    owner, stranger = await customer(client), await customer(client)
    sku = await item(client, admin)
    created = await client.post(
        "/orders",
        headers=with_key(owner),
        json={"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}},
    )
    order_id = (await created.json())["id"]

    mine = await client.get(f"/orders/{order_id}", headers=owner)
    theirs = await client.get(f"/orders/{order_id}", headers=stranger)
    anonymous = await client.get(f"/orders/{order_id}")
    unknown = await client.get(f"/orders/{uuid.uuid4().hex}", headers=owner)

    assert mine.status == 200
    body = await mine.json()
    assert body["id"] == order_id and body["payment"]["method"] == "redirect"
    assert set(body) == {
        "id",
        "status",
        "reason",
        "items",
        "total_cents",
        "currency",
        "hold_expires_at",
        "shipping_address",
        "payment",
        "payments",
        "refunded_cents",
        "returns",
        "history",
        "created_at",
        "updated_at",
        "archived",
        "source",
    }
    assert set(body["history"][0]) == {"status", "reason", "note", "at"}
    assert body["payments"] == [body["payment"]] and (body["refunded_cents"], body["returns"]) == (0, [])
    assert set(body["payment"]) == {
        "id",
        "attempt",
        "status",
        "method",
        "amount_cents",
        "refunded_cents",
        "currency",
        "provider_payment_id",
        "checkout_url",
    }
    assert theirs.status == 404 and theirs.content_type == "application/problem+json"
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert unknown.status == 404


async def test_same_key_same_body_returns_the_same_order(client, admin, sessionmaker):
    auth = await customer(client)
    sku = await item(client, admin)
    headers = with_key(auth)
    body = {"items": [{"sku": sku, "quantity": 3}], "payment": {"method": "token", "token": "pm_card_ok"}}

    first = await client.post("/orders", headers=headers, json=body)
    # Same content, members in another order: still the same request.
    second = await client.post(
        "/orders",
        headers=headers,
        json={"payment": {"token": "pm_card_ok", "method": "token"}, "items": body["items"]},
    )

    assert (first.status, second.status) == (202, 202)
    first_id, second_id = (await first.json())["id"], (await second.json())["id"]
    assert first_id == second_id
    assert second.headers["Location"] == f"/orders/{first_id}"
    assert await count(sessionmaker, OutboxMessage, OutboxMessage.order_id == first_id) == 1


async def test_same_key_different_body_is_refused(client, admin):
    auth = await customer(client)
    sku = await item(client, admin)
    headers = with_key(auth)
    assert (
        await client.post(
            "/orders",
            headers=headers,
            json={"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}},
        )
    ).status == 202

    response = await client.post(
        "/orders",
        headers=headers,
        json={"items": [{"sku": sku, "quantity": 2}], "payment": {"method": "redirect"}},
    )

    assert response.status == 422
    assert (await response.json())["type"].endswith("/idempotency-key-reused")


async def test_keys_belong_to_one_customer(client, admin):
    first, second = await customer(client), await customer(client)
    sku = await item(client, admin)
    key = uuid.uuid4().hex
    body = {"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}}

    a = await client.post("/orders", headers=with_key(first, key), json=body)
    b = await client.post("/orders", headers=with_key(second, key), json=body)

    assert (a.status, b.status) == (202, 202)
    assert (await a.json())["id"] != (await b.json())["id"]


async def test_missing_or_bad_key_is_400(client, admin):
    auth = await customer(client)
    sku = await item(client, admin)
    body = {"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}}

    missing = await client.post("/orders", headers=auth, json=body)
    too_long = await client.post("/orders", headers=with_key(auth, "k" * 256), json=body)

    assert missing.status == 400
    assert (await missing.json())["type"].endswith("/missing-idempotency-key")
    assert too_long.status == 400


async def test_identical_requests_at_the_same_moment_make_one_order(client, admin, sessionmaker):
    auth = await customer(client)
    sku = await item(client, admin)
    headers = with_key(auth)
    body = {"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "token", "token": "pm_card_ok"}}

    responses = await asyncio.gather(*(client.post("/orders", headers=headers, json=body) for _ in range(5)))

    assert [r.status for r in responses] == [202] * 5
    ids = {(await r.json())["id"] for r in responses}
    assert len(ids) == 1
    order_id = ids.pop()
    async with sessionmaker() as session:
        account_id = await session.scalar(select(Order.account_id).where(Order.id == order_id))
    assert await count(sessionmaker, Order, Order.account_id == account_id) == 1
    assert await count(sessionmaker, IdempotencyKey, IdempotencyKey.account_id == account_id) == 1
    assert await count(sessionmaker, OutboxMessage, OutboxMessage.order_id == order_id) == 1


async def test_unknown_sku_is_accepted_without_a_price(client, admin):
    auth = await customer(client)
    known = await item(client, admin, price_cents=700)
    unknown = f"NOPE-{uuid.uuid4().hex[:8]}"

    response = await client.post(
        "/orders",
        headers=with_key(auth),
        json={
            "items": [{"sku": known, "quantity": 2}, {"sku": unknown, "quantity": 1}],
            "payment": {"method": "redirect"},
        },
    )

    assert response.status == 202
    order = await response.json()
    assert {i["sku"]: i["unit_price_cents"] for i in order["items"]} == {known: 700, unknown: None}
    assert order["total_cents"] == 1400


async def test_items_in_two_currencies_are_refused(client, admin, sessionmaker):
    auth = await customer(client)
    dollars, euros = await item(client, admin), await item(client, admin, currency="EUR")
    key = uuid.uuid4().hex
    body = {
        "items": [{"sku": dollars, "quantity": 1}, {"sku": euros, "quantity": 1}],
        "payment": {"method": "redirect"},
    }

    response = await client.post("/orders", headers=with_key(auth, key), json=body)

    assert response.status == 422
    assert (await response.json())["type"].endswith("/currency-mismatch")
    # Nothing was kept: the key is free for a corrected order.
    assert await count(sessionmaker, IdempotencyKey, IdempotencyKey.key == key) == 0


async def test_order_bodies_are_validated(client, admin):
    auth = await customer(client)
    sku = await item(client, admin)
    line = {"sku": sku, "quantity": 1}
    pay = {"method": "redirect"}
    cases = [
        ({"items": [], "payment": pay}, "items"),
        ({"items": [line] * 2, "payment": pay}, "items[1].sku"),
        ({"items": [line, {"sku": sku.lower(), "quantity": 1}], "payment": pay}, "items[1].sku"),
        ({"items": [{"sku": f"S{i}", "quantity": 1} for i in range(51)], "payment": pay}, "items"),
        ({"items": [{"sku": sku, "quantity": 0}], "payment": pay}, "items[0].quantity"),
        ({"items": [{"sku": sku, "quantity": 1001}], "payment": pay}, "items[0].quantity"),
        ({"items": [{"sku": sku, "quantity": True}], "payment": pay}, "items[0].quantity"),
        ({"items": [{"sku": sku}], "payment": pay}, "items[0].quantity"),
        ({"items": [line], "payment": {"method": "token"}}, "payment.token"),
        ({"items": [line], "payment": {"method": "token", "token": "x" * 129}}, "payment.token"),
        ({"items": [line], "payment": {"method": "cash"}}, "payment.method"),
        ({"items": [line]}, "payment"),
        ({"items": [line], "payment": pay, "shipping_address": [1]}, "shipping_address"),
        ({"items": [line], "payment": pay, "total_cents": 1}, "total_cents"),
    ]
    for body, field in cases:
        response = await client.post("/orders", headers=with_key(auth), json=body)
        assert response.status == 422, (body, await response.text())
        assert (await response.json())["field"] == field, body


async def test_malformed_json_is_a_400_problem(client):
    auth = await customer(client)

    response = await client.post(
        "/orders", headers={**with_key(auth), "Content-Type": "application/json"}, data=b'{"items": ['
    )

    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert set(problem) >= {"type", "title", "status", "detail"}
    assert problem["type"].endswith("/malformed-json")
