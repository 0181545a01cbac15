"""The gateway's HTTP routes, one module per resource."""

from __future__ import annotations

from aiohttp import web

from gateway.openapi import handlers as openapi
from gateway.routes import (
    accounts,
    admin,
    cart,
    catalogue,
    fulfilment,
    health,
    items,
    orders,
    payments,
    webhooks,
    wishlist,
)


def setup_routes(app: web.Application) -> None:
    """Register every route of the API on ``app``."""
    for module in (health, accounts, items, orders, cart, wishlist, fulfilment, webhooks, admin):
        app.add_routes(module.routes)
    # Browsing the catalogue (GET /items, receipts); payments and refunds.
    for module in (catalogue, payments):
        app.add_routes(module.routes)
    # The API's description and its docs page (GET /openapi.json, GET /docs).
    app.add_routes(openapi.routes)
