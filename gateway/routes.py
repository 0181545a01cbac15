"""Every HTTP route of the gateway, gathered from the feature packages that define them."""

from __future__ import annotations

from aiohttp import web

from gateway.accounts import routes as accounts
from gateway.cart import routes as cart
from gateway.cart import wishlist_routes as wishlist
from gateway.catalogue import browsing_routes as catalogue
from gateway.catalogue import item_routes as items
from gateway.fulfilment import routes as fulfilment
from gateway.openapi import handlers as openapi
from gateway.operations import health
from gateway.operations import reconciliation_routes as reconciliation
from gateway.orders import routes as orders
from gateway.payments import routes as payments
from gateway.payments import webhook
from gateway.returns import routes as returns


def setup_routes(app: web.Application) -> None:
    """Register every route of the API on ``app``."""
    # aiohttp tries resources in the order they were added; this order is the one tested.
    for module in (health, accounts, items, orders, cart, wishlist, fulfilment, webhook, reconciliation):
        app.add_routes(module.routes)
    for module in (catalogue, payments):
        app.add_routes(module.routes)
    app.add_routes(returns.routes)
    # The API's description and its docs page (GET /openapi.json, GET /docs).
    app.add_routes(openapi.routes)
