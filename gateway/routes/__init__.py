"""The gateway's HTTP routes, one module per resource."""

from __future__ import annotations

from aiohttp import web

from gateway.routes import accounts, admin, fulfilment, health, items, orders, webhooks


def setup_routes(app: web.Application) -> None:
    """Register every route of the API on ``app``."""
    for module in (health, accounts, items, orders, fulfilment, webhooks, admin):
        app.add_routes(module.routes)
