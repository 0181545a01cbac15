"""The customer's cart: ``GET /cart``, ``PUT``/``DELETE /cart/items/{sku}`` and ``POST /cart/checkout``.

Every answer but the checkout's is the whole cart, priced from the catalogue as it is now
(:func:`gateway.cart.contents.cart_document`). Customer tokens only: the admin token answers 403.

A checkout becomes an order exactly as ``POST /orders`` does, through
:func:`gateway.orders.placing.place_order`, with two differences:

- its lines are the cart's, read inside the order's transaction and priced from the catalogue
  there; the client sends only ``payment`` and ``shipping_address``, declared with the very types
  of ``POST /orders`` (:mod:`gateway.cart.schemas`), so the two cannot drift apart;
- its Idempotency-Key lives in a scope of its own (:data:`CHECKOUT_SCOPE`): a key first used for
  ``POST /orders`` never answers a checkout with that other order, nor the other way round. The
  request hash covers the body plus the scope ``"cart"``. A replay (same key, same body) answers
  with the order first made, even when the cart has changed since.

The order is marked ``source: "cart"``; the worker takes its lines out of the cart once the
order is placed (:mod:`models.order_flow`). Nothing here empties the cart.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from msgspec import UNSET
from sqlalchemy import delete

from gateway.cart.contents import (
    cart_document,
    catalogue_sku,
    customer_account_id,
    lock_account,
    set_cart_line,
)
from gateway.cart.schemas import CartQuantity, Checkout
from gateway.catalogue.skus import path_sku
from gateway.http.bodies import convert, read_body
from gateway.http.idempotency import idempotency_key
from gateway.http.json_documents import read_json
from gateway.http.problems import INVALID_REQUEST, Problem
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER, SETTINGS, UNITS_OF_WORK
from gateway.orders.placing import OrderRequest, place_order
from gateway.payments.methods import payment_fields
from models.tables import CartItem

routes = web.RouteTableDef()

CHECKOUT_SCOPE = "checkout"
CART_SOURCE = "cart"


@routes.get("/cart")
async def get_cart(request: web.Request) -> web.Response:
    """The caller's cart with current names, prices and availability."""
    account_id = customer_account_id(request)
    async with request.app[SESSIONMAKER]() as session:
        return json_response(await cart_document(session, account_id))


@routes.put("/cart/items/{sku}")
async def put_cart_line(request: web.Request) -> web.Response:
    """Set how many of a catalogue item the cart holds (replacing the quantity): 200 with the cart.

    404 for a SKU not in the catalogue; 422 for a new line in a cart of 50 lines already.
    """
    account_id = customer_account_id(request)
    wanted = path_sku(request)
    quantity = (await read_body(request, CartQuantity)).quantity
    async with request.app[SESSIONMAKER]() as session, session.begin():
        sku = await catalogue_sku(session, wanted)
        await lock_account(session, account_id)
        await set_cart_line(session, account_id, sku, quantity)
        await session.flush()
        cart = await cart_document(session, account_id)
    return json_response(cart)


@routes.delete("/cart/items/{sku}")
async def delete_cart_line(request: web.Request) -> web.Response:
    """Take a line out of the cart: 200 with the cart, also when the line was not there."""
    account_id = customer_account_id(request)
    sku = path_sku(request)
    async with request.app[SESSIONMAKER]() as session, session.begin():
        if sku is not None:
            await session.execute(
                delete(CartItem).where(CartItem.account_id == account_id, CartItem.sku == sku)
            )
        cart = await cart_document(session, account_id)
    return json_response(cart)


def checkout_fields(body: Any) -> Checkout:
    """The checked ``payment`` and ``shipping_address`` of a checkout body; 422 problems otherwise.

    ``items`` (and anything else unknown, such as a price) is refused: the cart says what is
    ordered and the catalogue what it costs.
    """
    if isinstance(body, dict) and "items" in body:
        raise Problem(
            INVALID_REQUEST,
            "items: is not a known field; a checkout orders what the cart holds",
            field="items",
        )
    return convert(body, Checkout)


@routes.post("/cart/checkout")
async def checkout(request: web.Request) -> web.Response:
    """Order what the cart holds: 202 with the PENDING order, or the same order on a replay.

    422 empty-cart when there is nothing to order; the limits of ``POST /orders`` apply alike
    (429 past ``MAX_UNPAID_ORDERS`` unpaid orders, the account's default payment token when the
    body names no ``payment``), as both go through :func:`place_order`.
    """
    account_id = customer_account_id(request)
    key = idempotency_key(request, operation="POST /cart/checkout", per="checkout")
    body = await read_json(request)
    fields = checkout_fields(body)
    placed = await place_order(
        request.app[UNITS_OF_WORK],
        OrderRequest(
            account_id=account_id,
            key=key,
            body={"scope": CART_SOURCE, "body": body},
            lines=[],
            payment=payment_fields(fields.payment),
            shipping_address=None if fields.shipping_address is UNSET else fields.shipping_address,
            has_shipping_address=fields.shipping_address is not UNSET,
            source=CART_SOURCE,
            scope=CHECKOUT_SCOPE,
        ),
        max_unpaid_orders=request.app[SETTINGS].max_unpaid_orders,
    )
    structlog.contextvars.bind_contextvars(order_id=placed.order.id)
    return json_response(
        placed.found.document(), status=202, headers={"Location": f"/orders/{placed.order.id}"}
    )
