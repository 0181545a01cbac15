"""The catalogue through the gateway: admin-only writes, public reads, stock receipts."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from models.tables import StockReceipt


def new_sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:12]}"


async def test_admin_creates_an_item_that_anyone_can_read(client, admin):
    sku = new_sku()
    response = await client.post(
        "/items",
        headers=admin,
        json={
            "sku": sku,
            "name": "Mug",
            "price_cents": 1250,
            "upc": "012345678905",
            "picture_urls": ["https://img.example/mug.png"],
            "attributes": {"colour": "blue"},
        },
    )
    assert response.status == 201, await response.text()
    assert response.headers["Location"] == f"/items/{sku}"

    read = await client.get(f"/items/{sku}")

    assert read.status == 200
    assert await read.json() == {
        "sku": sku,
        "name": "Mug",
        "price_cents": 1250,
        "currency": "USD",
        "upc": "012345678905",
        "picture_urls": ["https://img.example/mug.png"],
        "attributes": {"colour": "blue"},
        "available": 0,
    }


async def test_writes_need_the_admin_token(client, admin):
    body = {"sku": new_sku(), "name": "Mug", "price_cents": 100}

    anonymous = await client.post("/items", json=body)
    wrong = await client.post("/items", json=body, headers={"Authorization": "Bearer not-the-admin-token"})
    stock = await client.post(f"/items/{body['sku']}/stock", json={"quantity": 1})

    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status == 403
    assert stock.status == 401
    assert (await client.get(f"/items/{body['sku']}")).status == 404


async def test_duplicate_sku_is_a_conflict(client, admin):
    body = {"sku": new_sku(), "name": "Mug", "price_cents": 100}
    assert (await client.post("/items", json=body, headers=admin)).status == 201

    again = await client.post("/items", json=body, headers=admin)

    assert again.status == 409
    assert again.content_type == "application/problem+json"


async def test_item_fields_are_checked(client, admin):
    good = {"sku": new_sku(), "name": "Mug", "price_cents": 100}
    cases = [
        ({**good, "price_cents": True}, "price_cents"),
        ({**good, "price_cents": -1}, "price_cents"),
        ({**good, "price_cents": 1.5}, "price_cents"),
        ({**good, "price_cents": "100"}, "price_cents"),
        ({**good, "sku": "has space"}, "sku"),
        ({**good, "sku": "x" * 65}, "sku"),
        ({**good, "currency": "usd"}, "currency"),
        ({**good, "picture_urls": ["ftp://img.example/a.png"]}, "picture_urls[0]"),
        ({**good, "picture_urls": ["https://img.example/a.png"] * 21}, "picture_urls"),
        ({**good, "attributes": ["not", "an", "object"]}, "attributes"),
        ({**good, "name": ""}, "name"),
    ]
    for body, field in cases:
        response = await client.post("/items", json=body, headers=admin)
        assert response.status == 422, (body, await response.text())
        assert (await response.json())["field"] == field


async def test_a_free_item_is_refused_because_no_order_for_it_could_be_paid(client, admin):
    # The payment provider refuses amounts below one cent: every order would end payment_failed.
    sku = new_sku()

    response = await client.post(
        "/items", json={"sku": sku, "name": "Free sticker", "price_cents": 0}, headers=admin
    )

    assert response.status == 422 and response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["field"] == "price_cents" and "from 1 to" in problem["detail"]
    assert (await client.get(f"/items/{sku}")).status == 404
    cheapest = await client.post(
        "/items", json={"sku": sku, "name": "Sticker", "price_cents": 1}, headers=admin
    )
    assert cheapest.status == 201 and (await cheapest.json())["price_cents"] == 1


async def test_stock_receipts_add_up(client, admin, sessionmaker):
    sku = new_sku()
    assert (
        await client.post("/items", json={"sku": sku, "name": "Mug", "price_cents": 100}, headers=admin)
    ).status == 201

    responses = await asyncio.gather(
        *(client.post(f"/items/{sku}/stock", json={"quantity": 5}, headers=admin) for _ in range(4))
    )

    assert [r.status for r in responses] == [201] * 4
    bodies = [await r.json() for r in responses]
    assert max(body["available"] for body in bodies) == 20
    assert (await (await client.get(f"/items/{sku}")).json())["available"] == 20
    last = await (await client.post(f"/items/{sku}/stock", json={"quantity": 1}, headers=admin)).json()
    assert last == {"sku": sku, "available": 21, "received": 21}
    async with sessionmaker() as session:
        receipts = await session.scalar(
            select(func.count()).select_from(StockReceipt).where(StockReceipt.sku == sku)
        )
    assert receipts == 5


async def test_stock_quantity_is_checked_and_item_must_exist(client, admin):
    sku = new_sku()
    assert (
        await client.post("/items", json={"sku": sku, "name": "Mug", "price_cents": 100}, headers=admin)
    ).status == 201

    for quantity in (0, 1_000_001, True, "5", None):
        response = await client.post(f"/items/{sku}/stock", json={"quantity": quantity}, headers=admin)
        assert response.status == 422, quantity
    missing = await client.post(f"/items/{new_sku()}/stock", json={"quantity": 1}, headers=admin)
    assert missing.status == 404
