"""The operator's side of an order (admin token): ``POST /orders/{id}/ship`` and ``/deliver``."""

from __future__ import annotations

from aiohttp import web

from gateway.fulfilment.advancing import OPERATOR, advance
from gateway.http.auth import require_admin
from gateway.http.order_access import order_id_param
from gateway.http.responses import json_response
from gateway.keys import UNITS_OF_WORK
from models.state import OrderStatus

routes = web.RouteTableDef()


async def _advance(request: web.Request, target: OrderStatus) -> web.Response:
    require_admin(request)
    order_id = order_id_param(request, OPERATOR)
    found = await advance(request.app[UNITS_OF_WORK], order_id, target)
    return json_response(found.document())


@routes.post("/orders/{order_id}/ship")
async def ship(request: web.Request) -> web.Response:
    """Mark a PLACED order as shipped; 409 from any other status (an archived order included)."""
    return await _advance(request, OrderStatus.SHIPPED)


@routes.post("/orders/{order_id}/deliver")
async def deliver(request: web.Request) -> web.Response:
    """Mark a SHIPPED order as delivered; 409 from any other status (an archived order included)."""
    return await _advance(request, OrderStatus.DELIVERED)
