"""The cart through the gateway: lines priced from the catalogue, and checkout as an idempotent order."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from models.order_flow import place
from models.order_moves import move_order
from models.state import OrderStatus
from models.tables import CartItem, IdempotencyKey, Order, OutboxMessage
from models.unit_of_work import UnitOfWork
from tests.support.gateway_calls import NoMessages, customer

PROBLEMS = "https://orders.example/problems/"
TOKEN = {"method": "token", "token": "pm_card_ok"}


async def item(
    client, admin, *, price_cents: int = 1000, currency: str = "USD", stock: int = 0, name: str = "Thing"
) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    response = await client.post(
        "/items",
        headers=admin,
        json={"sku": sku, "name": name, "price_cents": price_cents, "currency": currency},
    )
    assert response.status == 201, await response.text()
    if stock:
        received = await client.post(f"/items/{sku}/stock", headers=admin, json={"quantity": stock})
        assert received.status == 201, await received.text()
    return sku


def with_key(auth: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**auth, "Idempotency-Key": key or uuid.uuid4().hex}


async def put(client, auth, sku: str, quantity: int) -> dict:
    response = await client.put(f"/cart/items/{sku}", headers=auth, json={"quantity": quantity})
    assert response.status == 200, await response.text()
    return await response.json()


async def cart(client, auth) -> dict:
    response = await client.get("/cart", headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


async def checkout(client, auth, key: str | None = None, body: dict | None = None):
    return await client.post(
        "/cart/checkout", headers=with_key(auth, key), json={"payment": TOKEN} if body is None else body
    )


async def account_id(client, auth) -> str:
    return (await (await client.get("/accounts/me", headers=auth)).json())["id"]


async def test_lines_are_added_replaced_and_removed_with_current_catalogue_prices(client, admin):
    auth = await customer(client)
    mug = await item(client, admin, price_cents=1250, stock=7, name="Mug")
    shirt = await item(client, admin, price_cents=2000, name="Shirt")

    assert await cart(client, auth) == {"items": [], "total_cents": 0, "currency": None}
    await put(client, auth, mug, 2)
    await put(client, auth, shirt, 1)
    replaced = await put(client, auth, mug, 3)

    assert replaced == {
        "items": [
            {
                "sku": mug,
                "quantity": 3,
                "name": "Mug",
                "unit_price_cents": 1250,
                "currency": "USD",
                "available": 7,
                "line_total_cents": 3750,
                "unknown": False,
            },
            {
                "sku": shirt,
                "quantity": 1,
                "name": "Shirt",
                "unit_price_cents": 2000,
                "currency": "USD",
                "available": 0,
                "line_total_cents": 2000,
                "unknown": False,
            },
        ],
        "total_cents": 5750,
        "currency": "USD",
    }
    assert await cart(client, auth) == replaced

    removed = await client.delete(f"/cart/items/{shirt}", headers=auth)
    assert removed.status == 200
    assert [(line["sku"], line["quantity"]) for line in (await removed.json())["items"]] == [(mug, 3)]
    # Removing a line that is not there is no error, nor is a SKU that could never exist.
    again = await client.delete(f"/cart/items/{shirt}", headers=auth)
    assert again.status == 200 and (await again.json())["total_cents"] == 3750
    assert (await client.delete("/cart/items/no%20such%20sku", headers=auth)).status == 200
    # SKUs compare case-insensitively: the line keeps the catalogue's spelling.
    await put(client, auth, mug.lower(), 4)
    assert [(line["sku"], line["quantity"]) for line in (await cart(client, auth))["items"]] == [(mug, 4)]
    gone = await client.delete(f"/cart/items/{mug.lower()}", headers=auth)
    assert (await gone.json())["items"] == []


async def test_unknown_skus_and_bad_quantities_are_refused(client, admin):
    auth = await customer(client)
    sku = await item(client, admin)

    missing = await client.put("/cart/items/NO-SUCH-SKU", headers=auth, json={"quantity": 1})
    assert missing.status == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    assert (await client.put("/cart/items/bad%20sku", headers=auth, json={"quantity": 1})).status == 404
    for body in (
        {"quantity": 0},
        {"quantity": 1001},
        {"quantity": "2"},
        {"quantity": 1.0},
        {},
        {"quantity": 1, "unit_price_cents": 1},
    ):
        response = await client.put(f"/cart/items/{sku}", headers=auth, json=body)
        assert response.status == 422, body
    assert (await cart(client, auth))["items"] == []


async def test_items_gone_from_the_catalogue_stay_flagged_unknown(client, admin, sessionmaker):
    auth = await customer(client)
    sku = await item(client, admin, price_cents=500)
    await put(client, auth, sku, 2)
    async with sessionmaker() as session, session.begin():
        session.add(CartItem(account_id=await account_id(client, auth), sku="RETIRED-1", quantity=1))

    shown = await cart(client, auth)

    assert shown["total_cents"] == 1000 and shown["currency"] == "USD"
    retired = next(line for line in shown["items"] if line["sku"] == "RETIRED-1")
    assert retired == {
        "sku": "RETIRED-1",
        "quantity": 1,
        "name": None,
        "unit_price_cents": None,
        "currency": None,
        "available": None,
        "line_total_cents": None,
        "unknown": True,
    }


async def test_items_in_different_currencies_have_no_cart_total_and_cannot_be_checked_out(client, admin):
    auth = await customer(client)
    await put(client, auth, await item(client, admin, currency="USD"), 1)
    await put(client, auth, await item(client, admin, currency="EUR"), 1)

    shown = await cart(client, auth)
    assert (shown["total_cents"], shown["currency"]) == (None, None)
    refused = await checkout(client, auth)
    assert refused.status == 422
    assert (await refused.json())["type"] == PROBLEMS + "currency-mismatch"


async def test_a_cart_holds_at_most_fifty_lines(client, admin, sessionmaker):
    auth = await customer(client)
    owner = await account_id(client, auth)
    async with sessionmaker() as session, session.begin():
        session.add_all(CartItem(account_id=owner, sku=f"OLD-{n}", quantity=1) for n in range(49))
    fiftieth, fifty_first = await item(client, admin), await item(client, admin)

    await put(client, auth, fiftieth, 1)
    full = await client.put(f"/cart/items/{fifty_first}", headers=auth, json={"quantity": 1})

    assert full.status == 422
    assert (await full.json())["type"] == PROBLEMS + "cart-full"
    # Changing the quantity of a line already there is still fine.
    assert len((await put(client, auth, fiftieth, 3))["items"]) == 50


async def test_the_cart_is_for_customers_only(client, admin):
    for method, path in (
        ("GET", "/cart"),
        ("PUT", "/cart/items/X"),
        ("DELETE", "/cart/items/X"),
        ("POST", "/cart/checkout"),
    ):
        anonymous = await client.request(method, path, json={"quantity": 1})
        assert anonymous.status == 401, (method, path)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        operator = await client.request(method, path, headers=with_key(admin), json={"quantity": 1})
        assert operator.status == 403, (method, path)


async def test_carts_are_private(client, admin):
    mine, theirs = await customer(client), await customer(client)
    await put(client, mine, await item(client, admin), 1)
    assert (await cart(client, theirs))["items"] == []


async def test_checkout_orders_the_cart_priced_from_the_catalogue_and_keeps_the_cart(
    client, admin, sessionmaker
):
    auth = await customer(client)
    mug, shirt = await item(client, admin, price_cents=1250), await item(client, admin, price_cents=2000)
    await put(client, auth, mug, 2)
    await put(client, auth, shirt, 1)

    response = await checkout(
        client, auth, body={"payment": TOKEN, "shipping_address": {"line1": "1 Main St"}}
    )

    assert response.status == 202, await response.text()
    order = await response.json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert order["status"] == "PENDING"
    assert sorted(
        (line["sku"], line["quantity"], line["unit_price_cents"]) for line in order["items"]
    ) == sorted([(mug, 2, 1250), (shirt, 1, 2000)])
    assert (order["total_cents"], order["currency"]) == (4500, "USD")
    assert order["payment"]["method"] == "token"
    async with sessionmaker() as session:
        stored = await session.get(Order, order["id"])
        assert stored.source == "cart"
        assert stored.shipping_address == {"line1": "1 Main St"}
        assert stored.payment.token == "pm_card_ok" and stored.payment.amount_cents == 4500
        key = await session.scalar(select(IdempotencyKey).where(IdempotencyKey.order_id == order["id"]))
        assert key.scope == "checkout"
        outbox = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order["id"]))
        ).all()
    assert [(m.actor_name, m.kwargs) for m in outbox] == [("reserve", {"order_id": order["id"]})]
    # The cart is emptied only once the order is placed, by the worker.
    assert [(line["sku"], line["quantity"]) for line in (await cart(client, auth))["items"]] == [
        (mug, 2),
        (shirt, 1),
    ]
    assert (await (await client.get(f"/orders/{order['id']}", headers=auth)).json())["status"] == "PENDING"


async def test_checkout_takes_no_items_or_prices_from_the_client(client, admin):
    auth = await customer(client)
    sku = await item(client, admin, price_cents=1000)
    await put(client, auth, sku, 1)

    for body in (
        {"payment": TOKEN, "items": [{"sku": sku, "quantity": 1, "unit_price_cents": 1}]},
        {"payment": TOKEN, "total_cents": 1},
        {"payment": {"method": "token", "token": "pm_card_ok", "price_cents": 1}},
        {"payment": {"method": "cash"}},
        {"payment": TOKEN, "shipping_address": "1 Main St"},
        ["payment"],
    ):
        response = await checkout(client, auth, body=body)
        assert response.status == 422, body
        assert (await response.json())["type"] == PROBLEMS + "invalid-request"
    assert (await client.post("/cart/checkout", headers=with_key(auth), data=b"")).status == 400


async def test_checkout_replays_by_key_even_after_the_cart_changed(client, admin):
    auth = await customer(client)
    mug, shirt = await item(client, admin, price_cents=1250), await item(client, admin, price_cents=2000)
    await put(client, auth, mug, 1)
    key = uuid.uuid4().hex

    first = await checkout(client, auth, key)
    await put(client, auth, shirt, 5)
    await put(client, auth, mug, 9)
    again = await checkout(client, auth, key)

    assert first.status == again.status == 202
    made, replayed = await first.json(), await again.json()
    assert replayed["id"] == made["id"]
    assert [(line["sku"], line["quantity"]) for line in replayed["items"]] == [(mug, 1)]
    assert replayed["total_cents"] == 1250

    different = await checkout(client, auth, key, body={"payment": {"method": "redirect"}})
    assert different.status == 422
    assert (await different.json())["type"] == PROBLEMS + "idempotency-key-reused"
    missing = await client.post("/cart/checkout", headers=auth, json={"payment": TOKEN})
    assert missing.status == 400
    assert (await missing.json())["type"] == PROBLEMS + "missing-idempotency-key"


async def test_an_empty_cart_cannot_be_checked_out_and_does_not_use_up_the_key(client, admin):
    auth = await customer(client)
    key = uuid.uuid4().hex

    empty = await checkout(client, auth, key)

    assert empty.status == 422
    problem = await empty.json()
    assert problem["type"] == PROBLEMS + "empty-cart" and problem["status"] == 422
    await put(client, auth, await item(client, admin), 1)
    assert (await checkout(client, auth, key)).status == 202


async def test_one_key_for_an_order_and_a_checkout_makes_two_orders_of_their_own_kind(
    client, admin, sessionmaker
):
    auth = await customer(client)
    sku = await item(client, admin)
    await put(client, auth, sku, 2)
    key = uuid.uuid4().hex
    direct_body = {"items": [{"sku": sku, "quantity": 1}], "payment": TOKEN}

    direct = await (await client.post("/orders", headers=with_key(auth, key), json=direct_body)).json()
    from_cart = await checkout(client, auth, key)
    direct_again = await (await client.post("/orders", headers=with_key(auth, key), json=direct_body)).json()
    cart_again = await checkout(client, auth, key)

    assert from_cart.status == 202
    made = await from_cart.json()
    assert made["id"] != direct["id"]
    assert direct_again["id"] == direct["id"] and (await cart_again.json())["id"] == made["id"]
    async with sessionmaker() as session:
        assert (await session.get(Order, direct["id"])).source == "api"
        assert (await session.get(Order, made["id"])).source == "cart"


async def test_placing_a_checkout_takes_its_lines_out_of_the_cart(client, admin, sessionmaker):
    auth = await customer(client)
    mug, shirt, later = (await item(client, admin), await item(client, admin), await item(client, admin))
    await put(client, auth, mug, 1)
    await put(client, auth, shirt, 2)
    order_id = (await (await checkout(client, auth)).json())["id"]
    await put(client, auth, later, 1)

    # What reserve and settle do, without a runtime: hold (no stock rows needed here), then pay.
    async with UnitOfWork(sessionmaker, NoMessages()) as uow:
        order = await uow.lock_order(order_id)
        await move_order(uow, order, OrderStatus.AWAITING_PAYMENT)
        await place(uow, order, order.payment)
        await uow.commit()

    assert (await (await client.get(f"/orders/{order_id}", headers=auth)).json())["status"] == "PLACED"
    assert [line["sku"] for line in (await cart(client, auth))["items"]] == [later]


async def test_placing_a_plain_order_leaves_the_cart_alone(client, admin, sessionmaker):
    auth = await customer(client)
    sku = await item(client, admin)
    await put(client, auth, sku, 1)
    created = await client.post(
        "/orders", headers=with_key(auth), json={"items": [{"sku": sku, "quantity": 1}], "payment": TOKEN}
    )
    order_id = (await created.json())["id"]

    async with UnitOfWork(sessionmaker, NoMessages()) as uow:
        order = await uow.lock_order(order_id)
        await move_order(uow, order, OrderStatus.AWAITING_PAYMENT)
        await place(uow, order, order.payment)
        await uow.commit()

    assert [line["sku"] for line in (await cart(client, auth))["items"]] == [sku]


async def test_identical_checkouts_at_the_same_moment_make_one_order(client, admin, sessionmaker):
    auth = await customer(client)
    await put(client, auth, await item(client, admin), 1)
    key = uuid.uuid4().hex

    responses = await asyncio.gather(*(checkout(client, auth, key) for _ in range(4)))

    assert [response.status for response in responses] == [202] * 4
    ids = {(await response.json())["id"] for response in responses}
    assert len(ids) == 1
    async with sessionmaker() as session:
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.account_id == await account_id(client, auth))
        )
    assert orders == 1


async def test_checkout_is_held_to_the_unpaid_orders_limit_like_any_order(client, admin, settings):
    auth = await customer(client)
    await put(client, auth, await item(client, admin), 1)
    keys = [uuid.uuid4().hex for _ in range(settings.max_unpaid_orders)]
    for key in keys:
        assert (await checkout(client, auth, key)).status == 202

    refused = await checkout(client, auth)

    assert refused.status == 429
    assert (await refused.json())["type"] == PROBLEMS + "too-many-unpaid-orders"
    # A retried checkout still finds its order.
    assert (await checkout(client, auth, keys[0])).status == 202


async def test_checkout_without_payment_uses_the_default_payment_method(client, admin):
    auth = await customer(client)
    await put(client, auth, await item(client, admin), 1)

    refused = await checkout(client, auth, body={})
    assert refused.status == 422 and (await refused.json())["field"] == "payment"
    saved = await client.patch(
        "/accounts/me",
        headers=auth,
        json={"default_payment_method": {"method": "token", "token": "pm_card_ok"}},
    )
    assert saved.status == 200, await saved.text()
    made = await checkout(client, auth, body={})

    assert made.status == 202, await made.text()
    assert (await made.json())["payment"]["method"] == "token"
