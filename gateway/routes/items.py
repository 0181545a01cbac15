"""The catalogue: ``POST /items`` and ``POST /items/{sku}/stock`` (admin), ``GET /items/{sku}`` (public)."""

from __future__ import annotations

import re

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.auth import require_admin
from gateway.db import OUT_OF_RANGE, error_code, is_duplicate_key
from gateway.keys import SESSIONMAKER
from gateway.problems import ITEM_EXISTS, STOCK_LIMIT, Problem
from gateway.responses import json_response
from gateway.validation import array, http_url, integer, json_object, obj, read_json, string, validate
from models.clock import utcnow
from models.inventory import book_receipt
from models.tables import Item, Stock
from models.views import item_json

routes = web.RouteTableDef()

SKU_PATTERN = r"[A-Za-z0-9._-]{1,64}"
_SKU_SHAPE = re.compile(SKU_PATTERN)
SKU = string(max_length=64, pattern=SKU_PATTERN, what="letters, digits, '.', '_' or '-'")
# Generous but finite: totals of 50 lines x 1000 units stay far inside a BIGINT.
MAX_PRICE_CENTS = 10**12
# Payment providers refuse amounts below one cent, so a free item could only ever be ordered
# into CANCELLED payment_failed: it is refused when listed instead.
MIN_PRICE_CENTS = 1

NEW_ITEM = obj(
    required={
        "sku": SKU,
        "name": string(max_length=200, not_blank=True),
        "price_cents": integer(minimum=MIN_PRICE_CENTS, maximum=MAX_PRICE_CENTS),
    },
    optional={
        "currency": string(min_length=3, max_length=3, pattern=r"[A-Z]{3}", what="an ISO 4217 code like USD"),
        "upc": string(max_length=32, pattern=r"[0-9A-Za-z-]+", what="letters, digits or '-'"),
        "picture_urls": array(http_url(), max_items=20),
        "attributes": json_object(max_bytes=4096, max_depth=4),
    },
)
STOCK_RECEIPT = obj(required={"quantity": integer(minimum=1, maximum=1_000_000)})


@routes.post("/items")
async def create_item(request: web.Request) -> web.Response:
    """Add an item to the catalogue with no stock yet; 409 when the SKU exists."""
    require_admin(request)
    fields = validate(NEW_ITEM, await read_json(request))
    item = Item(
        sku=fields["sku"],
        name=fields["name"],
        price_cents=fields["price_cents"],
        currency=fields.get("currency") or "USD",
        upc=fields.get("upc"),
        picture_urls=fields.get("picture_urls") or [],
        attributes=fields.get("attributes") or {},
        created_at=utcnow(),
    )
    try:
        async with request.app[SESSIONMAKER]() as session, session.begin():
            session.add(item)
            # The item row must exist before its stock row references it.
            await session.flush()
            session.add(Stock(sku=item.sku, available=0, received=0))
    except IntegrityError as exc:
        if is_duplicate_key(exc):
            raise Problem(ITEM_EXISTS, f"an item with sku {fields['sku']!r} already exists") from None
        raise
    return json_response(item_json(item, available=0), status=201, headers={"Location": f"/items/{item.sku}"})


def _path_sku(request: web.Request) -> str:
    """The SKU in the URL; one that could never have been created is simply not found."""
    sku = request.match_info["sku"]
    if not _SKU_SHAPE.fullmatch(sku):
        raise Problem(404, f"no item with sku {sku!r}")
    return sku


@routes.get("/items/{sku}")
async def get_item(request: web.Request) -> web.Response:
    """One catalogue item with its available quantity."""
    sku = _path_sku(request)
    async with request.app[SESSIONMAKER]() as session:
        item = await session.get(Item, sku)
        if item is None:
            raise Problem(404, f"no item with sku {sku!r}")
        available = item.stock.available if item.stock is not None else 0
    return json_response(item_json(item, available))


@routes.post("/items/{sku}/stock")
async def receive_stock(request: web.Request) -> web.Response:
    """Book received units into stock: a receipt row and the counters move in one transaction."""
    require_admin(request)
    wanted = _path_sku(request)
    quantity = validate(STOCK_RECEIPT, await read_json(request))["quantity"]
    try:
        async with request.app[SESSIONMAKER]() as session, session.begin():
            sku = await session.scalar(select(Item.sku).where(Item.sku == wanted))
            if sku is None:
                raise Problem(404, f"no item with sku {wanted!r}")
            level = await book_receipt(await session.connection(), sku, quantity)
    except DBAPIError as exc:
        if error_code(exc) == OUT_OF_RANGE:
            raise Problem(
                STOCK_LIMIT, "this receipt would take the stock past the largest storable quantity"
            ) from None
        raise
    return json_response({"sku": sku, "available": level.available, "received": level.received}, status=201)
