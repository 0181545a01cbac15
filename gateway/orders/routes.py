"""Customer orders: ``POST /orders`` (idempotent by ``Idempotency-Key``), ``GET /orders``,
``GET /orders/{id}``, ``PATCH /orders/{id}`` (its shipping address), ``POST /orders/{id}/cancel``
and the live ``GET /orders/{id}/events``.

Listing, reading, changing, cancelling and following orders take the owner's token or the admin
token.
Archived orders answer everywhere, marked ``"archived": true``.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from msgspec import UNSET

from gateway.http.auth import authenticated_account_id, customer_or_admin
from gateway.http.bodies import convert, read_body
from gateway.http.idempotency import idempotency_key
from gateway.http.json_documents import read_json
from gateway.http.order_access import FoundOrder, find_order, order_id_param
from gateway.http.paging import page_query
from gateway.http.problems import INVALID_REQUEST, Problem
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER, SETTINGS, UNITS_OF_WORK
from gateway.orders.address_change import change_address
from gateway.orders.cancelling import request_cancel
from gateway.orders.cursors import Cursor
from gateway.orders.listing import list_orders
from gateway.orders.placing import OrderRequest, place_order
from gateway.orders.schemas import NewOrder, OrderListQuery, ShippingAddressChange
from gateway.orders.status_stream import stream_status
from gateway.payments.methods import payment_fields
from models.state import OrderStatus

routes = web.RouteTableDef()


def _order_response(found: FoundOrder) -> web.Response:
    return json_response(found.document(), status=202, headers={"Location": f"/orders/{found.order.id}"})


@routes.post("/orders")
async def create_order(request: web.Request) -> web.Response:
    """Accept an order for processing: 202 with the PENDING order, or the same order on a replay."""
    account_id = authenticated_account_id(request)
    key = idempotency_key(request, operation="POST /orders", per="order")
    # Parsed first, then checked: the request's hash covers the body as sent.
    body = await read_json(request)
    order = convert(body, NewOrder)
    seen: dict[str, int] = {}
    for index, line in enumerate(order.items):
        # SKUs compare case-insensitively in the database, so "abc" and "ABC" are one line.
        folded = line.sku.lower()
        if folded in seen:
            raise Problem(
                INVALID_REQUEST,
                f"items[{index}].sku: {line.sku!r} already appears in "
                f"items[{seen[folded]}]; put the whole quantity on one line",
                field=f"items[{index}].sku",
            )
        seen[folded] = index
    placed = await place_order(
        request.app[UNITS_OF_WORK],
        OrderRequest(
            account_id=account_id,
            key=key,
            body=body,
            lines=[{"sku": line.sku, "quantity": line.quantity} for line in order.items],
            payment=payment_fields(order.payment),
            shipping_address=None if order.shipping_address is UNSET else order.shipping_address,
            has_shipping_address=order.shipping_address is not UNSET,
        ),
        max_unpaid_orders=request.app[SETTINGS].max_unpaid_orders,
    )
    structlog.contextvars.bind_contextvars(order_id=placed.order.id)
    return _order_response(placed.found)


def _list_query(request: web.Request) -> tuple[str | None, int, Cursor | None]:
    """``status``, ``limit`` and the decoded ``cursor`` of ``GET /orders``; 422/400 problems when unusable.

    An empty parameter (``?status=``) counts as absent, as form-built URLs often send one.
    """
    query = page_query(request, OrderListQuery, ("status",))
    cursor = request.query.get("cursor")
    status = query.status.value if isinstance(query.status, OrderStatus) else None
    return status, query.limit, Cursor.decode(cursor) if cursor else None


@routes.get("/orders")
async def get_orders(request: web.Request) -> web.Response:
    """The caller's orders (the operator: everyone's), newest first, archived ones included.

    ``status`` filters (422 for an unknown one), ``limit`` is 1..100 (default 20), ``cursor``
    is the ``next_cursor`` of the previous page (400 when it is not one).
    """
    caller = customer_or_admin(request)
    status, limit, after = _list_query(request)
    async with request.app[SESSIONMAKER]() as session:
        page = await list_orders(
            session, account_id=caller.account_id, status=status, limit=limit, after=after
        )
    return json_response(page)


@routes.get("/orders/{order_id}")
async def get_order(request: web.Request) -> web.Response:
    """One order, for its owner or the operator; someone else's is as unknown as a missing one (404)."""
    caller = customer_or_admin(request)
    order_id = order_id_param(request, caller)
    async with request.app[SESSIONMAKER]() as session:
        found = await find_order(session, order_id, caller)
    return json_response(found.document())


@routes.patch("/orders/{order_id}")
async def change_order(request: web.Request) -> web.Response:
    """Give an order a new shipping address (owner or operator) until it ships: 200 the order as
    changed; 409 once it has shipped, ended or been archived; someone else's order is 404.
    """
    caller = customer_or_admin(request)
    order_id = order_id_param(request, caller)
    change = await read_body(request, ShippingAddressChange)
    found = await change_address(request.app[UNITS_OF_WORK], order_id, caller, change.shipping_address)
    return json_response(found.document())


@routes.post("/orders/{order_id}/cancel")
async def cancel_order(request: web.Request) -> web.Response:
    """Accept an order for cancellation (202); the ``cancel`` step changes its status later.

    An order already cancelled or rejected answers 202 as it is: cancelling twice changes nothing.
    """
    caller = customer_or_admin(request)
    order_id = order_id_param(request, caller)
    return _order_response(await request_cancel(request.app[UNITS_OF_WORK], order_id, caller))


# No HEAD: a HEAD request would hold a stream open without ever receiving an event.
@routes.get("/orders/{order_id}/events", allow_head=False)
async def order_events(request: web.Request) -> web.StreamResponse:
    """Server-sent ``status`` events: the current status, then each change until a final one."""
    caller = customer_or_admin(request)
    order_id = order_id_param(request, caller)
    return await stream_status(request, order_id, caller)
