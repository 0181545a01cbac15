"""The catalogue: ``POST /items`` and ``POST /items/{sku}/stock`` (admin), ``GET /items/{sku}`` (public)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.catalogue import schemas
from gateway.catalogue.items import item_document
from gateway.catalogue.skus import path_sku
from gateway.http.auth import require_admin
from gateway.http.bodies import read_body
from gateway.http.db_errors import OUT_OF_RANGE, error_code, is_duplicate_key
from gateway.http.problems import ITEM_EXISTS, STOCK_LIMIT, Problem
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER
from models.clock import utcnow
from models.inventory import book_receipt
from models.tables import Item, Stock

routes = web.RouteTableDef()


@routes.post("/items")
async def create_item(request: web.Request) -> web.Response:
    """Add an item to the catalogue with no stock yet; 409 when the SKU exists."""
    require_admin(request)
    new = await read_body(request, schemas.NewItem)
    item = Item(
        sku=new.sku,
        name=new.name,
        price_cents=new.price_cents,
        currency=new.currency or "USD",
        upc=new.upc or None,
        picture_urls=new.picture_urls or [],
        attributes=new.attributes or {},
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
            raise Problem(ITEM_EXISTS, f"an item with sku {new.sku!r} already exists") from None
        raise
    return json_response(
        item_document(item, available=0), status=201, headers={"Location": f"/items/{item.sku}"}
    )


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
    return json_response(item_document(item, available))


@routes.post("/items/{sku}/stock")
async def receive_stock(request: web.Request) -> web.Response:
    """Book received units into stock: a receipt row and the counters move in one transaction."""
    require_admin(request)
    wanted = _path_sku(request)
    quantity = (await read_body(request, schemas.StockReceipt)).quantity
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
    return json_response(schemas.StockLevel(sku, level.available, level.received), status=201)
