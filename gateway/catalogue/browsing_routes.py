"""Browsing the catalogue: ``GET /items?q=&limit=&cursor=`` (public) and
``GET /items/{sku}/receipts`` (admin).

The writes and the single-item read live in :mod:`gateway.catalogue.item_routes`.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from gateway.catalogue.browsing import SkuCursor, list_items, stock_receipts
from gateway.catalogue.schemas import ItemListQuery
from gateway.catalogue.skus import SKU_SHAPE
from gateway.http.auth import require_admin
from gateway.http.paging import page_query
from gateway.http.problems import Problem
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER
from models.tables import Item

routes = web.RouteTableDef()


def _list_query(request: web.Request) -> tuple[str | None, int, SkuCursor | None]:
    """``q``, ``limit`` and the decoded ``cursor``; 422/400 problems when unusable.

    An empty parameter (``?q=``) counts as absent, as form-built URLs often send one.
    """
    query = page_query(request, ItemListQuery, ("q",))
    cursor = request.query.get("cursor")
    search = query.q if isinstance(query.q, str) else None
    return search, query.limit, SkuCursor.decode(cursor) if cursor else None


@routes.get("/items")
async def get_items(request: web.Request) -> web.Response:
    """A page of the catalogue in SKU order: ``{"items": [...], "next_cursor": ...}``.

    ``q`` keeps items whose name or SKU contains it (ignoring case), ``limit`` is 1..100
    (default 20), ``cursor`` is the ``next_cursor`` of the previous page (400 when it is not one).
    """
    search, limit, after = _list_query(request)
    async with request.app[SESSIONMAKER]() as session:
        page = await list_items(session, search=search, limit=limit, after=after)
    return json_response(page)


@routes.get("/items/{sku}/receipts")
async def get_receipts(request: web.Request) -> web.Response:
    """Every stock receipt of an item, newest first (admin): ``{"receipts": [{quantity, received_at}]}``."""
    require_admin(request)
    wanted = request.match_info["sku"]
    async with request.app[SESSIONMAKER]() as session:
        # A SKU that could never have been created is simply not found.
        sku = (
            await session.scalar(select(Item.sku).where(Item.sku == wanted))
            if SKU_SHAPE.fullmatch(wanted)
            else None
        )
        if sku is None:
            raise Problem(404, f"no item with sku {wanted!r}")
        receipts = await stock_receipts(session, sku)
    return json_response(receipts)
