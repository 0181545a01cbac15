"""Browsing the catalogue: ``GET /items`` (search, keyset pages by SKU) and ``GET /items/{sku}/receipts``.

The database is shared by the run, so every test names its items with a tag of its own and
searches for that tag: what other tests created never shows up in its pages.
"""

from __future__ import annotations

import base64
import uuid

import pytest

CURSOR_PROBLEM = "https://orders.example/problems/invalid-cursor"


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


async def add_item(client, admin, sku: str, name: str, *, price_cents: int = 1000, stock: int = 0) -> None:
    created = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": name, "price_cents": price_cents}
    )
    assert created.status == 201, await created.text()
    if stock:
        received = await client.post(f"/items/{sku}/stock", headers=admin, json={"quantity": stock})
        assert received.status == 201, await received.text()


async def page(client, **params) -> dict:
    response = await client.get("/items", params={k: str(v) for k, v in params.items()})
    assert response.status == 200, await response.text()
    return await response.json()


async def test_search_finds_items_by_name_or_sku_ignoring_case(client, admin):
    tag = new_tag()
    await add_item(client, admin, f"MUG-{tag}", f"Blue Mug {tag.upper()}", price_cents=1250, stock=7)
    await add_item(client, admin, f"TEE-{tag}", f"Shirt {tag}")
    await add_item(client, admin, f"ZZZ-{tag}-cap", "Cap")

    by_name = await page(client, q=f"mug {tag}")
    by_tag = await page(client, q=tag.upper())
    by_sku = await page(client, q=f"zzz-{tag.upper()}")

    assert [item["sku"] for item in by_name["items"]] == [f"MUG-{tag}"]
    mug = by_name["items"][0]
    assert mug == {
        "sku": f"MUG-{tag}",
        "name": f"Blue Mug {tag.upper()}",
        "price_cents": 1250,
        "currency": "USD",
        "upc": None,
        "picture_urls": [],
        "attributes": {},
        "available": 7,
    }
    assert [item["sku"] for item in by_tag["items"]] == [f"MUG-{tag}", f"TEE-{tag}", f"ZZZ-{tag}-cap"]
    assert by_tag["items"][1]["available"] == 0
    assert [item["sku"] for item in by_sku["items"]] == [f"ZZZ-{tag}-cap"]
    assert by_name["next_cursor"] is None and by_tag["next_cursor"] is None


async def test_percent_and_underscore_in_a_search_are_literal(client, admin):
    tag = new_tag()
    await add_item(client, admin, f"A-{tag}", f"50% off {tag}")
    await add_item(client, admin, f"B-{tag}", f"500 off {tag}")
    await add_item(client, admin, f"C-{tag}", f"5_0 pens {tag}")
    await add_item(client, admin, f"D-{tag}", f"5x0 pens {tag}")
    await add_item(client, admin, f"E-{tag}", f"back\\slash {tag}")

    percent = await page(client, q=f"50% off {tag}")
    underscore = await page(client, q=f"5_0 pens {tag}")
    backslash = await page(client, q="k\\s")
    wildcard_only = await page(client, q="%", limit=100)

    assert [item["sku"] for item in percent["items"]] == [f"A-{tag}"]
    assert [item["sku"] for item in underscore["items"]] == [f"C-{tag}"]
    assert f"E-{tag}" in [item["sku"] for item in backslash["items"]]
    assert all("%" in item["name"] or "%" in item["sku"] for item in wildcard_only["items"])


async def test_pages_follow_the_sku_order_without_gaps_or_repeats(client, admin):
    tag = new_tag()
    skus = [f"P{tag}-{n:02d}" for n in (5, 1, 4, 2, 3)]
    for sku in skus:
        await add_item(client, admin, sku, f"Paged {tag}")

    seen, cursors, params = [], [], {"q": tag, "limit": 2}
    while True:
        body = await page(client, **params)
        seen.append([item["sku"] for item in body["items"]])
        if body["next_cursor"] is None:
            break
        cursors.append(body["next_cursor"])
        params = {"q": tag, "limit": 2, "cursor": body["next_cursor"]}

    assert seen == [[f"P{tag}-01", f"P{tag}-02"], [f"P{tag}-03", f"P{tag}-04"], [f"P{tag}-05"]]
    # Cursors are opaque URL-safe text.
    assert all(cursor.replace("-", "").replace("_", "").isalnum() for cursor in cursors)

    # An item added behind the cursor while paging shows up on the page it belongs to.
    await add_item(client, admin, f"P{tag}-035", f"Paged {tag}")
    resumed = await page(client, q=tag, limit=2, cursor=cursors[0])
    assert [item["sku"] for item in resumed["items"]] == [f"P{tag}-03", f"P{tag}-035"]


async def test_default_limit_is_twenty_and_the_whole_catalogue_pages_without_a_search(client, admin):
    tag = new_tag()
    for n in range(21):
        await add_item(client, admin, f"L{tag}-{n:02d}", f"Many {tag}")

    first = await page(client, q=tag)
    rest = await page(client, q=tag, cursor=first["next_cursor"])
    everything = await page(client, limit=100)

    assert len(first["items"]) == 20 and first["next_cursor"]
    assert [item["sku"] for item in rest["items"]] == [f"L{tag}-20"] and rest["next_cursor"] is None
    skus = [item["sku"] for item in everything["items"]]
    assert len(skus) == len(set(skus)) and 21 <= len(skus) <= 100
    assert [sku.lower() for sku in skus] == sorted(sku.lower() for sku in skus)


async def test_listing_is_public(client):
    response = await client.get("/items", params={"q": new_tag()})

    assert response.status == 200
    assert await response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"q": "x" * 201}, "q"),
    ],
)
async def test_bad_list_parameters_are_422_problems_naming_the_field(client, params, field):
    response = await client.get("/items", params=params)

    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert (await response.json())["field"] == field


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        base64.urlsafe_b64encode(b'["sku", "has space"]').decode(),
        base64.urlsafe_b64encode(b'["created_at", "ABC"]').decode(),
        base64.urlsafe_b64encode(b'"ABC"').decode(),
        "x" * 300,
    ],
)
async def test_a_cursor_not_handed_out_is_a_400_problem(client, cursor):
    response = await client.get("/items", params={"cursor": cursor})

    assert response.status == 400
    problem = await response.json()
    assert problem["type"] == CURSOR_PROBLEM and problem["field"] == "cursor"


# -- stock receipts ----------------------------------------------------------------------------


async def test_receipts_are_listed_newest_first_for_the_operator(client, admin):
    sku = f"R-{new_tag()}"
    await add_item(client, admin, sku, "Received")
    for quantity in (5, 2, 9):
        assert (
            await client.post(f"/items/{sku}/stock", headers=admin, json={"quantity": quantity})
        ).status == 201

    response = await client.get(f"/items/{sku.lower()}/receipts", headers=admin)

    assert response.status == 200, await response.text()
    receipts = (await response.json())["receipts"]
    assert [receipt["quantity"] for receipt in receipts] == [9, 2, 5]
    assert all(receipt["received_at"].endswith("Z") for receipt in receipts)
    assert [r["received_at"] for r in receipts] == sorted((r["received_at"] for r in receipts), reverse=True)
    assert set(receipts[0]) == {"quantity", "received_at"}


async def test_an_item_never_received_has_no_receipts(client, admin):
    sku = f"R-{new_tag()}"
    await add_item(client, admin, sku, "Nothing yet")

    response = await client.get(f"/items/{sku}/receipts", headers=admin)

    assert response.status == 200
    assert await response.json() == {"receipts": []}


async def test_receipts_are_for_the_operator_only_and_unknown_items_are_404(client, admin):
    sku = f"R-{new_tag()}"
    await add_item(client, admin, sku, "Secret supply", stock=3)

    anonymous = await client.get(f"/items/{sku}/receipts")
    customer = await client.get(f"/items/{sku}/receipts", headers={"Authorization": "Bearer not-the-admin"})
    unknown = await client.get(f"/items/NOPE-{new_tag()}/receipts", headers=admin)
    impossible = await client.get("/items/no%20such%20sku/receipts", headers=admin)

    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert customer.status == 403
    assert (unknown.status, impossible.status) == (404, 404)
    assert unknown.content_type == "application/problem+json"
