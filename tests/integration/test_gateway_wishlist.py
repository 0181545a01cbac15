"""The wishlist through the gateway: catalogue items kept for later, per customer."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from models.tables import WishlistItem
from tests.support.gateway_calls import customer


async def item(client, admin, *, name: str = "Thing", price_cents: int = 1000, stock: int = 0) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    response = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": name, "price_cents": price_cents}
    )
    assert response.status == 201, await response.text()
    if stock:
        assert (
            await client.post(f"/items/{sku}/stock", headers=admin, json={"quantity": stock})
        ).status == 201
    return sku


async def wishlist(client, auth) -> list[dict]:
    response = await client.get("/wishlist", headers=auth)
    assert response.status == 200, await response.text()
    return (await response.json())["items"]


async def test_items_are_kept_shown_with_catalogue_data_and_removed(client, admin):
    auth = await customer(client)
    lamp = await item(client, admin, name="Lamp", price_cents=4200, stock=3)
    rug = await item(client, admin, name="Rug", price_cents=9900)

    assert await wishlist(client, auth) == []
    first = await client.put(f"/wishlist/{lamp}", headers=auth)
    assert first.status == 200, await first.text()
    second = await client.put(f"/wishlist/{rug}", headers=auth)
    listed = (await second.json())["items"]

    assert [{k: v for k, v in entry.items() if k != "added_at"} for entry in listed] == [
        {
            "sku": lamp,
            "name": "Lamp",
            "price_cents": 4200,
            "currency": "USD",
            "available": 3,
            "unknown": False,
        },
        {"sku": rug, "name": "Rug", "price_cents": 9900, "currency": "USD", "available": 0, "unknown": False},
    ]
    assert all(entry["added_at"].endswith("Z") for entry in listed)
    assert await wishlist(client, auth) == listed

    removed = await client.delete(f"/wishlist/{lamp}", headers=auth)
    assert removed.status == 200
    assert [entry["sku"] for entry in (await removed.json())["items"]] == [rug]
    # Taking off what is not there is no error.
    assert (await client.delete(f"/wishlist/{lamp}", headers=auth)).status == 200
    assert (await client.delete("/wishlist/not%20a%20sku", headers=auth)).status == 200
    assert [entry["sku"] for entry in await wishlist(client, auth)] == [rug]


async def test_putting_an_item_again_changes_nothing(client, admin, sessionmaker):
    auth = await customer(client)
    sku = await item(client, admin)
    before = (await (await client.put(f"/wishlist/{sku}", headers=auth)).json())["items"]

    again = await client.put(f"/wishlist/{sku.lower()}", headers=auth)
    together = await asyncio.gather(*(client.put(f"/wishlist/{sku}", headers=auth) for _ in range(4)))

    assert again.status == 200 and [response.status for response in together] == [200] * 4
    assert (await again.json())["items"] == before
    assert await wishlist(client, auth) == before
    async with sessionmaker() as session:
        assert len((await session.scalars(select(WishlistItem).where(WishlistItem.sku == sku))).all()) == 1


async def test_unknown_items_cannot_be_kept(client):
    auth = await customer(client)
    for path in ("/wishlist/NO-SUCH-SKU", "/wishlist/bad%20sku"):
        response = await client.put(path, headers=auth)
        assert response.status == 404
        assert response.headers["Content-Type"].startswith("application/problem+json")
    assert await wishlist(client, auth) == []


async def test_each_customer_sees_only_their_own_wishlist(client, admin):
    mine, theirs = await customer(client), await customer(client)
    sku = await item(client, admin)
    await client.put(f"/wishlist/{sku}", headers=mine)

    assert await wishlist(client, theirs) == []
    assert (await client.delete(f"/wishlist/{sku}", headers=theirs)).status == 200
    assert [entry["sku"] for entry in await wishlist(client, mine)] == [sku]


async def test_the_wishlist_is_for_customers_only(client, admin):
    for method, path in (("GET", "/wishlist"), ("PUT", "/wishlist/X"), ("DELETE", "/wishlist/X")):
        anonymous = await client.request(method, path)
        assert anonymous.status == 401, (method, path)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await client.request(method, path, headers=admin)).status == 403, (method, path)
