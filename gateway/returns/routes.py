"""Returns: ``POST /orders/{id}/returns`` (the order's customer; ``Idempotency-Key`` required),
``GET /orders/{id}/returns`` and ``GET /returns/{id}`` (the owner or the operator), and the
operator's ``POST /returns/{id}/receive`` and ``POST /returns/{id}/reject``.
"""

from __future__ import annotations

from aiohttp import web
from msgspec import UNSET

from gateway.http.auth import Caller, customer_or_admin, require_admin
from gateway.http.bodies import convert, read_body
from gateway.http.idempotency import idempotency_key, request_hash
from gateway.http.json_documents import read_json
from gateway.http.order_access import order_id_param
from gateway.http.problems import Problem
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER, SETTINGS, UNITS_OF_WORK
from gateway.returns.access import return_id_param, visible_order, visible_return
from gateway.returns.handling import receive, reject
from gateway.returns.requesting import ReturnRequest, ask_for_return
from gateway.returns.schemas import NewReturn, ReturnList, ReturnReceipt, ReturnRejection
from models.return_documents import load_archived_returns, load_returns

routes = web.RouteTableDef()

OPERATOR = Caller(account_id=None)


def _location(return_id: str) -> dict[str, str]:
    return {"Location": f"/returns/{return_id}"}


@routes.post("/orders/{order_id}/returns")
async def create_return(request: web.Request) -> web.Response:
    """Ask to send delivered items back: 201 with the REQUESTED return, or the same return on a replay."""
    caller = customer_or_admin(request)
    if caller.account_id is None:
        raise Problem(403, "a return is asked for by the order's customer; the admin token cannot")
    order_id = order_id_param(request, caller)
    key = idempotency_key(request, operation="POST /orders/{id}/returns", per="return")
    # Parsed first, then checked: the request's hash covers the body as sent.
    body = await read_json(request)
    wanted = convert(body, NewReturn)
    requested = await ask_for_return(
        request.app[UNITS_OF_WORK],
        ReturnRequest(
            account_id=caller.account_id,
            order_id=order_id,
            key=key,
            request_hash=request_hash(body),
            items=[(item.sku, item.quantity) for item in wanted.items],
            reason=None if wanted.reason is UNSET else wanted.reason,
        ),
        window_seconds=request.app[SETTINGS].return_window_seconds,
    )
    document = requested.document
    return json_response(document, status=201, headers=_location(document.id))


@routes.get("/orders/{order_id}/returns")
async def list_returns(request: web.Request) -> web.Response:
    """An order's returns, oldest first (archived orders' too), for its owner or the operator."""
    caller = customer_or_admin(request)
    order_id = order_id_param(request, caller)
    async with request.app[SESSIONMAKER]() as session:
        connection = await session.connection()
        archived = await visible_order(connection, order_id, caller)
        read = load_archived_returns if archived else load_returns
        returns = await read(connection, order_id)
    return json_response(ReturnList(returns=returns))


@routes.get("/returns/{return_id}")
async def get_return(request: web.Request) -> web.Response:
    """One return, for its order's owner or the operator; someone else's is a 404."""
    caller = customer_or_admin(request)
    return_id = return_id_param(request, caller)
    async with request.app[SESSIONMAKER]() as session:
        document, _ = await visible_return(await session.connection(), return_id, caller)
    return json_response(document)


@routes.post("/returns/{return_id}/receive")
async def receive_return(request: web.Request) -> web.Response:
    """The goods are back: 202 with the RECEIVED return (restocked if asked), its refund on its way;
    receiving again answers the same; 409 for a rejected return."""
    require_admin(request)
    return_id = return_id_param(request, OPERATOR)
    receipt = await read_body(request, ReturnReceipt)
    document = await receive(request.app[UNITS_OF_WORK], return_id, restock=receipt.restock)
    return json_response(document, status=202, headers=_location(document.id))


@routes.post("/returns/{return_id}/reject")
async def reject_return(request: web.Request) -> web.Response:
    """Refuse a return: 200 with the REJECTED return; rejecting again answers the same; 409 for a
    return received already."""
    require_admin(request)
    return_id = return_id_param(request, OPERATOR)
    rejection = await read_body(request, ReturnRejection)
    return json_response(await reject(request.app[UNITS_OF_WORK], return_id, reason=rejection.reason))
