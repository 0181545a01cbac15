"""Payments: ``GET /payments/{id}`` (the order's owner or the operator),
``POST /orders/{id}/refund`` (the operator; ``Idempotency-Key`` required) and
``POST /orders/{id}/payment`` (the owner paying another way; ``Idempotency-Key`` required).

The provider's webhook, ``POST /payments/webhook``, lives in :mod:`gateway.payments.webhook`.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway.http.auth import Caller, customer_or_admin, require_admin
from gateway.http.bodies import convert, decode
from gateway.http.idempotency import idempotency_key, request_hash
from gateway.http.json_documents import read_json
from gateway.http.order_access import order_id_param
from gateway.http.problems import Problem
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER, UNITS_OF_WORK
from gateway.payments.lookup import find_payment, payment_detail, refund_documents
from gateway.payments.method_change import PaymentChange, change_payment
from gateway.payments.methods import payment_fields
from gateway.payments.refunds import RefundRequest, request_refund
from gateway.payments.schemas import PaymentChangeBody, RefundBody

routes = web.RouteTableDef()


# GET only: POST /payments/webhook, a route of its own, is not shadowed by this pattern.
@routes.get("/payments/{payment_id}")
async def get_payment(request: web.Request) -> web.Response:
    """One payment, for the owner of its order or the operator; anyone else's is a 404."""
    caller = customer_or_admin(request)
    payment_id = request.match_info["payment_id"]
    structlog.contextvars.bind_contextvars(payment_id=payment_id)
    async with request.app[SESSIONMAKER]() as session:
        found = await find_payment(session, payment_id, caller)
        refunds = await refund_documents(session, found.payment.id, archived=found.archived)
    return json_response(payment_detail(found.payment, refunds))


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


@routes.post("/orders/{order_id}/payment")
async def change_order_payment(request: web.Request) -> web.Response:
    """Pay an order awaiting payment another way: 202 with the order, its new attempt current;
    409 once the order no longer awaits payment. The owner only: the admin token answers 403."""
    caller = customer_or_admin(request)
    if caller.account_id is None:
        # The new way to pay is the customer's choice, and their key's namespace is their account.
        raise Problem(403, "only the order's owner can change how it is paid; the admin token cannot")
    order_id = order_id_param(request, caller)
    key = idempotency_key(request, operation="POST /orders/{id}/payment", per="change")
    # Parsed first, then checked: the request's hash covers the body as sent.
    body = await read_json(request)
    checked = convert(body, PaymentChangeBody)
    found = await change_payment(
        request.app[UNITS_OF_WORK],
        PaymentChange(
            account_id=caller.account_id,
            order_id=order_id,
            key=key,
            request_hash=request_hash(body),
            payment=payment_fields(checked.payment),
        ),
    )
    return json_response(found.document(), status=202, headers={"Location": f"/orders/{order_id}"})
