"""Payments: ``GET /payments/{id}`` (the order's owner or the operator) and
``POST /orders/{id}/refund`` (the operator; ``Idempotency-Key`` required).

The provider's webhook, ``POST /payments/webhook``, lives in :mod:`gateway.payments.webhook`.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway.http.auth import Caller, customer_or_admin, require_admin
from gateway.http.bodies import decode
from gateway.http.idempotency import idempotency_key
from gateway.http.order_access import order_id_param
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER, UNITS_OF_WORK
from gateway.payments.lookup import find_payment, payment_detail, refund_documents
from gateway.payments.refunds import RefundRequest, request_refund
from gateway.payments.schemas import RefundBody

routes = web.RouteTableDef()


# GET only: POST /payments/webhook, a route of its own, is not shadowed by this pattern.
@routes.get("/payments/{payment_id}")
async def get_payment(request: web.Request) -> web.Response:
    """One payment, for the owner of its order or the operator; anyone else's is a 404."""
    caller = customer_or_admin(request)
    payment_id = request.match_info["payment_id"]
    structlog.contextvars.bind_contextvars(payment_id=payment_id)
    async with request.app[SESSIONMAKER]() as session:
        payment = await find_payment(session, payment_id, caller)
        refunds = await refund_documents(session, payment.id)
    return json_response(payment_detail(payment, refunds))


@routes.post("/orders/{order_id}/refund")
async def refund_order(request: web.Request) -> web.Response:
    """Refund part or all of what is left of an order's payment: 202 with the payment (REFUND_PENDING);
    409 when the payment never succeeded, 422 when more is asked than is left."""
    require_admin(request)
    order_id = order_id_param(request, Caller(account_id=None))
    key = idempotency_key(request, operation="POST /orders/{id}/refund", per="refund")
    raw = await request.read()
    # No body at all means the same as an empty object: refund all that is left.
    body = decode(raw, RefundBody) if raw.strip() else RefundBody()
    document = await request_refund(
        request.app[UNITS_OF_WORK],
        RefundRequest(order_id=order_id, key=key, amount_cents=body.amount_cents, reason=body.reason),
    )
    return json_response(document, status=202, headers={"Location": f"/payments/{document.id}"})
