"""The catalogue: ``POST /items`` and ``POST /items/{sku}/stock`` (admin), ``GET /items/{sku}`` (public)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.catalogue.skus import SKU, path_sku
from gateway.http.auth import require_admin
from gateway.http.db_errors import OUT_OF_RANGE, error_code, is_duplicate_key
from gateway.http.problems import ITEM_EXISTS, STOCK_LIMIT, Problem
from gateway.http.responses import json_response
from gateway.http.validation import array, http_url, integer, json_object, obj, read_json, string, validate
from gateway.keys import SESSIONMAKER
from models.clock import utcnow
from models.tables import Item, Stock, StockReceipt
from models.views import item_json

routes = web.RouteTableDef()

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
    sku = path_sku(request)
    if sku is None:
        raise Problem(404, f"no item with sku {request.match_info['sku']!r}")
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
            session.add(StockReceipt(sku=sku, quantity=quantity, received_at=utcnow()))
            # Relative update in the database: concurrent receipts and reservations never lose units.
            result = await session.execute(
                update(Stock)
                .where(Stock.sku == sku)
                .values(available=Stock.available + quantity, received=Stock.received + quantity)
            )
            if result.rowcount == 0:  # an item created without its stock row (e.g. by a seed)
                session.add(Stock(sku=sku, available=quantity, received=quantity))
                await session.flush()
            row = (
                await session.execute(select(Stock.available, Stock.received).where(Stock.sku == sku))
            ).one()
    except DBAPIError as exc:
        if error_code(exc) == OUT_OF_RANGE:
            raise Problem(
                STOCK_LIMIT, "this receipt would take the stock past the largest storable quantity"
            ) from None
        raise
    return json_response({"sku": sku, "available": row.available, "received": row.received}, status=201)
