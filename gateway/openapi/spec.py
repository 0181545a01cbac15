"""The OpenAPI 3.0.3 document of the gateway (docs/contract.md, "HTTP API"), as Python data.

Every body schema, of requests and of answers, is generated from the msgspec type that reads or
writes that body, and the parameters' schemas from the types that check them
(:mod:`gateway.openapi.components`), so a field or a limit is declared once, where it is enforced.
What is written here is the rest: paths, operations, parameters, response codes, security and
descriptions.
``tests/integration/test_openapi.py`` checks that every route is described and that real answers
fit; ``tests/e2e/test_fuzz.py`` (schemathesis) checks the rest against the running fleet.

Conventions of the document:

- request bodies say ``additionalProperties: false`` where the gateway refuses unknown members;
  an optional member may be sent as ``null``, which means "absent" (or "clear" for addresses);
- every error is an ``application/problem+json`` document (the ``Problem`` schema) whose ``type``
  is listed per response, so a client can branch on it;
- customers authenticate with the bearer token of ``POST /auth/token`` (``customerToken``), the
  operator with ``ADMIN_TOKEN`` as a bearer token too (``adminToken``).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import metadata
from typing import Any

from gateway.accounts.schemas import Account, AccountChanges, Credentials, NewAccount
from gateway.cart.schemas import Cart, CartQuantity, Checkout, Wishlist
from gateway.catalogue.schemas import (
    Item,
    ItemListQuery,
    ItemPage,
    NewItem,
    Receipts,
    StockLevel,
    StockReceipt,
)
from gateway.catalogue.skus import Sku
from gateway.http.auth import Token
from gateway.http.idempotency import IDEMPOTENCY_HEADER, MAX_KEY_LENGTH
from gateway.http.order_access import MAX_ORDER_ID_LENGTH
from gateway.http.paging import DEFAULT_LIMIT, MAX_CURSOR_LENGTH
from gateway.http.problem_body import Problem
from gateway.http.problems import (
    ACCOUNT_EXISTS,
    ADDRESS_NOT_CHANGEABLE,
    CURRENCY_MISMATCH,
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    ILLEGAL_TRANSITION,
    INVALID_CREDENTIALS,
    INVALID_CURSOR,
    INVALID_EVENT,
    INVALID_IDEMPOTENCY_KEY,
    INVALID_REQUEST,
    INVALID_SIGNATURE,
    INVALID_TOKEN,
    ITEM_EXISTS,
    MALFORMED_JSON,
    MISSING_IDEMPOTENCY_KEY,
    NOT_CANCELLABLE,
    NOT_READY,
    PAYMENT_NOT_CHANGEABLE,
    PROBLEM_BASE,
    PROBLEM_CONTENT_TYPE,
    REFUND_TOO_LARGE,
    STOCK_LIMIT,
    ProblemType,
)
from gateway.openapi.components import body_schemas, query_schema, ref, value_schema
from gateway.operations.schemas import Health, Readiness, ReconciliationReport
from gateway.orders.schemas import NewOrder, OrderListQuery, OrderPage, ServerSentEvent, ShippingAddressChange
from gateway.payments.schemas import PaymentChangeBody, PaymentDetail, RefundBody, WebhookAck, WebhookEvent
from gateway.returns.access import MAX_RETURN_ID_LENGTH
from gateway.returns.schemas import NewReturn, ReturnList, ReturnReceipt, ReturnRejection
from models.documents import Id, Order, Return
from providers.webhook_signature import HEADER as SIGNATURE_HEADER
from providers.webhook_signature import STRIPE_HEADER as STRIPE_SIGNATURE_HEADER

OPENAPI_VERSION = "3.0.3"
JSON = "application/json"
#: ``type`` of the problems aiohttp-level conditions (not found, too large, ...) answer with.
BLANK = "about:blank"

Schema = dict[str, Any]


# -- small builders ---------------------------------------------------------------------------


def _slug(slug: str) -> str:
    return PROBLEM_BASE + slug


def problem(status: int, description: str, *types: ProblemType | str, headers: dict | None = None) -> dict:
    """A problem response: ``status`` in the body too, and ``type`` one of ``types``.

    A ``types`` entry is a :class:`ProblemType` of :mod:`gateway.http.problems`, :data:`BLANK`, or the
    slug of a problem type whose constant lives in a module this one does not import.
    """
    uris = []
    for kind in types or (BLANK,):
        if isinstance(kind, ProblemType):
            assert kind.status == status, f"{kind.slug} is a {kind.status}, listed under {status}"
            uris.append(kind.uri)
        else:
            uris.append(kind if kind == BLANK else _slug(kind))
    schema = {
        "allOf": [
            ref(Problem),
            {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": sorted(set(uris))},
                    "status": {"type": "integer", "enum": [status]},
                },
            },
        ]
    }
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def json_body(schema: Schema, description: str = "", *, required: bool = True) -> dict:
    body: dict[str, Any] = {"required": required, "content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def ok(description: str, schema: Schema, *, headers: dict | None = None) -> dict:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _header(description: str) -> dict:
    """A response header the gateway always sends with that response."""
    return {"description": description, "required": True, "schema": {"type": "string"}}


_LOCATION = {"Location": _header("Where the created resource can be read")}
_CHALLENGE = {"WWW-Authenticate": _header('`Bearer`, with `error="invalid_token"` for a bad token')}
_RETRY_AFTER = {"Retry-After": _header("Seconds to wait before trying again")}

# Answers several operations share; each operation lists the ones it can give.
MALFORMED = problem(400, "The body is missing, not JSON, not UTF-8, or nested too deeply", MALFORMED_JSON)
NEEDS_TOKEN = problem(
    401,
    "No usable bearer token: missing, malformed, expired, or its account is gone",
    BLANK,
    INVALID_TOKEN,
    headers=_CHALLENGE,
)
NEEDS_ADMIN = problem(401, "No usable bearer token", BLANK, INVALID_TOKEN, headers=_CHALLENGE)
#: The 400 of a POST that takes an ``Idempotency-Key`` and a JSON body.
BAD_BODY_OR_KEY = problem(
    400,
    "Malformed body, or a missing or unusable `Idempotency-Key`",
    MALFORMED_JSON,
    MISSING_IDEMPOTENCY_KEY,
    INVALID_IDEMPOTENCY_KEY,
)
NOT_ADMIN = problem(403, "A bearer token that is not the admin token")
TOO_LARGE = problem(413, "The body is larger than the gateway accepts (MAX_BODY_BYTES, 64 KiB by default)")
NO_CART = problem(403, "The admin token: carts and wishlists belong to customers")
UNAVAILABLE = problem(
    503, "The database is briefly unreachable or saturated; retry after `Retry-After`", headers=_RETRY_AFTER
)


def invalid(
    description: str = "The body (or a parameter) breaks a constraint; `field` names which",
    *types: ProblemType | str,
) -> dict:
    return problem(422, description, INVALID_REQUEST, *types)


def _responses(*pairs: tuple[int, dict]) -> dict[str, dict]:
    return {str(status): response for status, response in pairs}


Security = list[dict[str, list[str]]]
CUSTOMER: Security = [{"customerToken": []}]
ADMIN: Security = [{"adminToken": []}]
CUSTOMER_OR_ADMIN: Security = [{"customerToken": []}, {"adminToken": []}]
PUBLIC: list = []


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    *,
    security: list,
    responses: dict,
    description: str = "",
    parameters: list | None = None,
    body: dict | None = None,
) -> dict:
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    op["security"] = security
    op["responses"] = responses
    return op


# -- parameters -------------------------------------------------------------------------------

ID_SCHEMA = value_schema(Id)

PARAMETERS: dict[str, dict] = {
    "Sku": {
        "name": "sku",
        "in": "path",
        "required": True,
        "schema": value_schema(Sku),
        "description": "The item's SKU; one that could never exist answers 404",
    },
    "AnySku": {
        "name": "sku",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
        "description": "The SKU to take out; one that is not there (or could never exist) changes nothing",
    },
    "OrderId": {
        "name": "order_id",
        "in": "path",
        "required": True,
        "schema": {**ID_SCHEMA, "maxLength": MAX_ORDER_ID_LENGTH},
        "description": "The order's id; another customer's order answers 404 like a missing one",
    },
    "PaymentId": {
        "name": "payment_id",
        "in": "path",
        "required": True,
        "schema": ID_SCHEMA,
        "description": "The payment's id (`payment.id` of an order)",
    },
    "IdempotencyKey": {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": True,
        "description": "Chosen by the client, one per intended order, checkout or refund (a UUID, say): a "
        "retry with the same key and body answers as the first request did; the same key with "
        "another body is refused (422). Missing: 400.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": "^[!-~](?:[ -~]*[!-~])?$",
        },
    },
    "Limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"Page size, {DEFAULT_LIMIT} when absent or empty",
        # One page size for every list: both queries declare it as PageLimit.
        "schema": query_schema(OrderListQuery, "limit"),
    },
    "Cursor": {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "The `next_cursor` of the previous page (opaque); absent for the first page",
        "schema": {"type": "string", "maxLength": MAX_CURSOR_LENGTH},
    },
}


def param(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


# -- paths ------------------------------------------------------------------------------------


def _order_created(description: str) -> dict:
    return ok(description, ref(Order), headers={"Location": _header("`/orders/{id}`")})


_ORDER_PLACING_ERRORS = (
    (
        400,
        BAD_BODY_OR_KEY,
    ),
    (401, NEEDS_TOKEN),
    (
        409,
        problem(409, "A request with this `Idempotency-Key` is still being handled", IDEMPOTENCY_KEY_IN_USE),
    ),
    (413, TOO_LARGE),
    (
        429,
        problem(
            429,
            "Too many orders of this customer await payment (MAX_UNPAID_ORDERS)",
            "too-many-unpaid-orders",
            headers=_RETRY_AFTER,
        ),
    ),
    (503, UNAVAILABLE),
)


def _paths() -> dict[str, dict]:
    order_id, sku = param("OrderId"), param("Sku")
    return {
        # -- accounts and auth --
        "/accounts": {
            "post": operation(
                "createAccount",
                "Open a customer account",
                "accounts",
                security=PUBLIC,
                body=json_body(ref(NewAccount)),
                responses=_responses(
                    (201, ok("The new account (never the password)", ref(Account), headers=_LOCATION)),
                    (400, MALFORMED),
                    (409, problem(409, "An account with this email exists", ACCOUNT_EXISTS)),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/auth/token": {
            "post": operation(
                "createToken",
                "Exchange email and password for a bearer token",
                "accounts",
                security=PUBLIC,
                body=json_body(ref(Credentials)),
                responses=_responses(
                    (200, ok("A bearer token for the customer endpoints", ref(Token))),
                    (400, MALFORMED),
                    (401, problem(401, "Email or password is wrong", INVALID_CREDENTIALS)),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (
                        429,
                        problem(
                            429,
                            "Locked after too many failed sign-ins for this account "
                            "(AUTH_MAX_FAILURES_PER_ACCOUNT, then every attempt is refused, the right "
                            "password too) or from this address (AUTH_MAX_FAILURES_PER_ADDRESS) within "
                            "AUTH_FAILURE_WINDOW_SECONDS; Retry-After says when the window ends",
                            "too-many-attempts",
                            headers=_RETRY_AFTER,
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/accounts/me": {
            "get": operation(
                "getMe",
                "The caller's account",
                "accounts",
                security=CUSTOMER,
                responses=_responses(
                    (200, ok("The account", ref(Account))), (401, NEEDS_TOKEN), (503, UNAVAILABLE)
                ),
            ),
            "patch": operation(
                "updateMe",
                "Change name, password, addresses or the default payment method",
                "accounts",
                security=CUSTOMER,
                body=json_body(ref(AccountChanges)),
                responses=_responses(
                    (200, ok("The account as changed", ref(Account))),
                    (400, MALFORMED),
                    (401, NEEDS_TOKEN),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (503, UNAVAILABLE),
                ),
            ),
        },
        # -- catalogue --
        "/items": {
            "get": operation(
                "listItems",
                "Search the catalogue",
                "catalogue",
                security=PUBLIC,
                description="Items whose SKU or name contains `q` (ignoring case, literally), in SKU order, "
                "a page at a time. An empty parameter counts as absent.",
                parameters=[
                    {
                        "name": "q",
                        "in": "query",
                        "required": False,
                        "description": "Text to look for",
                        "schema": query_schema(ItemListQuery, "q"),
                    },
                    param("Limit"),
                    param("Cursor"),
                ],
                responses=_responses(
                    (200, ok("One page of items", ref(ItemPage))),
                    (400, problem(400, "The cursor is not one this API handed out", INVALID_CURSOR)),
                    (422, invalid("A query parameter is out of range; `field` names it")),
                    (503, UNAVAILABLE),
                ),
            ),
            "post": operation(
                "createItem",
                "Add an item to the catalogue (no stock yet)",
                "catalogue",
                security=ADMIN,
                body=json_body(ref(NewItem)),
                responses=_responses(
                    (201, ok("The new item", ref(Item), headers=_LOCATION)),
                    (400, MALFORMED),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    (
                        409,
                        problem(
                            409, "An item with this SKU (compared case-insensitively) exists", ITEM_EXISTS
                        ),
                    ),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (503, UNAVAILABLE),
                ),
            ),
        },
        "/items/{sku}": {
            "get": operation(
                "getItem",
                "One item with the quantity available now",
                "catalogue",
                security=PUBLIC,
                parameters=[sku],
                responses=_responses(
                    (200, ok("The item", ref(Item))),
                    (404, problem(404, "No such item")),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/items/{sku}/stock": {
            "post": operation(
                "receiveStock",
                "Book received units into stock",
                "catalogue",
                security=ADMIN,
                parameters=[sku],
                body=json_body(ref(StockReceipt)),
                responses=_responses(
                    (201, ok("The item's stock after the receipt", ref(StockLevel))),
                    (400, MALFORMED),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    (404, problem(404, "No such item")),
                    (
                        409,
                        problem(409, "The receipt would exceed the largest storable quantity", STOCK_LIMIT),
                    ),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/items/{sku}/receipts": {
            "get": operation(
                "listReceipts",
                "Every stock receipt of an item, newest first",
                "catalogue",
                security=ADMIN,
                parameters=[sku],
                responses=_responses(
                    (200, ok("The receipts", ref(Receipts))),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    (404, problem(404, "No such item")),
                    (503, UNAVAILABLE),
                ),
            )
        },
        # -- orders --
        "/orders": {
            "post": operation(
                "createOrder",
                "Place an order",
                "orders",
                security=CUSTOMER,
                description="Accepted for processing: the order starts PENDING, then stock is held and the "
                "payment requested by the workers. Follow it with `GET /orders/{id}` or "
                "`GET /orders/{id}/events`. Without `payment`, the account's default payment "
                "method pays (422 when it has none).",
                parameters=[param("IdempotencyKey")],
                body=json_body(ref(NewOrder)),
                responses=_responses(
                    (202, _order_created("The order (PENDING), or the one this key made before")),
                    *_ORDER_PLACING_ERRORS,
                    (
                        422,
                        invalid(
                            "The body breaks a constraint (no `payment` and no default payment method "
                            "included), the key was used with another body, or the items are priced in "
                            "different currencies",
                            IDEMPOTENCY_KEY_REUSED,
                            CURRENCY_MISMATCH,
                        ),
                    ),
                ),
            ),
            "get": operation(
                "listOrders",
                "The caller's orders (the operator's: everyone's), newest first",
                "orders",
                security=CUSTOMER_OR_ADMIN,
                parameters=[
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "Only orders in this status (empty: all)",
                        "schema": query_schema(OrderListQuery, "status"),
                    },
                    param("Limit"),
                    param("Cursor"),
                ],
                responses=_responses(
                    (200, ok("One page of orders, archived ones included", ref(OrderPage))),
                    (400, problem(400, "The cursor is not one this API handed out", INVALID_CURSOR)),
                    (401, NEEDS_TOKEN),
                    (422, invalid("`status` or `limit` is not allowed; `field` names it")),
                    (503, UNAVAILABLE),
                ),
            ),
        },
        "/orders/{order_id}": {
            "get": operation(
                "getOrder",
                "One order",
                "orders",
                security=CUSTOMER_OR_ADMIN,
                parameters=[order_id],
                responses=_responses(
                    (200, ok("The order, archived or not", ref(Order))),
                    (401, NEEDS_TOKEN),
                    (404, problem(404, "No such order among the caller's")),
                    (503, UNAVAILABLE),
                ),
            ),
            "patch": operation(
                "changeOrderAddress",
                "Change an order's shipping address",
                "orders",
                security=CUSTOMER_OR_ADMIN,
                description="Allowed until the order ships. The history gets an entry noting "
                "`address_changed` (its status repeats), the customer an email and other services the "
                "`order.updated` event. The address the order already has answers 200 and changes "
                "nothing.",
                parameters=[order_id],
                body=json_body(ref(ShippingAddressChange)),
                responses=_responses(
                    (200, ok("The order with its new address", ref(Order))),
                    (400, MALFORMED),
                    (401, NEEDS_TOKEN),
                    (404, problem(404, "No such order among the caller's")),
                    (
                        409,
                        problem(
                            409,
                            "Shipped, delivered, cancelled, rejected or archived: too late to change the "
                            "address; `order_status` says what it is",
                            ADDRESS_NOT_CHANGEABLE,
                        ),
                    ),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (503, UNAVAILABLE),
                ),
            ),
        },
        "/orders/{order_id}/cancel": {
            "post": operation(
                "cancelOrder",
                "Ask for an order to be cancelled",
                "orders",
                security=CUSTOMER_OR_ADMIN,
                description="The `cancel` step changes the status later (releasing stock, refunding a "
                "payment). An order already cancelled or rejected answers 202 as it is.",
                parameters=[order_id],
                responses=_responses(
                    (202, _order_created("The order as it is now; cancellation queued")),
                    (401, NEEDS_TOKEN),
                    (404, problem(404, "No such order among the caller's")),
                    (
                        409,
                        problem(
                            409,
                            "Shipped or delivered: too late to cancel; `order_status` says which",
                            NOT_CANCELLABLE,
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/orders/{order_id}/events": {
            "get": operation(
                "followOrder",
                "Live status changes (server-sent events)",
                "orders",
                security=CUSTOMER_OR_ADMIN,
                description="`event: status` with `data: {id, status, reason, at}`: the current status "
                "first, then each change, until a final status (the stream then ends). Comment lines keep "
                "the connection alive; a stream also ends after 10 minutes (reconnect).",
                parameters=[order_id],
                responses=_responses(
                    (
                        200,
                        {
                            "description": "The event stream: each event is `status`, its data a "
                            "`StatusEvent` as JSON",
                            "content": {"text/event-stream": {"schema": ref(ServerSentEvent)}},
                        },
                    ),
                    (401, NEEDS_TOKEN),
                    (404, problem(404, "No such order among the caller's")),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/orders/{order_id}/ship": {
            "post": operation(
                "shipOrder",
                "Mark a PLACED order as shipped",
                "fulfilment",
                security=ADMIN,
                parameters=[order_id],
                responses=_responses(
                    (200, ok("The order, SHIPPED", ref(Order))),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    (404, problem(404, "No such order")),
                    (
                        409,
                        problem(
                            409,
                            "Not PLACED (or archived); `order_status` says what it is",
                            ILLEGAL_TRANSITION,
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/orders/{order_id}/deliver": {
            "post": operation(
                "deliverOrder",
                "Mark a SHIPPED order as delivered",
                "fulfilment",
                security=ADMIN,
                parameters=[order_id],
                responses=_responses(
                    (200, ok("The order, DELIVERED", ref(Order))),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    (404, problem(404, "No such order")),
                    (
                        409,
                        problem(
                            409,
                            "Not SHIPPED (or archived); `order_status` says what it is",
                            ILLEGAL_TRANSITION,
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/orders/{order_id}/refund": {
            "post": operation(
                "refundOrder",
                "Refund part or all of what is left of an order's payment",
                "payments",
                security=ADMIN,
                description="A refund of `amount_cents` (all that is left when absent) is recorded PENDING, "
                "the payment becomes REFUND_PENDING and the `refund` step asks the provider, with the "
                "refund's own idempotency key; its webhook confirms it, and the payment becomes "
                "PARTIALLY_REFUNDED, or REFUNDED once the confirmed refunds add up to the capture. What is "
                "left counts the refunds in flight, so concurrent requests never over-refund. The "
                "order's status and stock stay as they are. The same key again answers 202 with the "
                "payment and refunds nothing more, whatever the body.",
                parameters=[order_id, param("IdempotencyKey")],
                body=json_body(ref(RefundBody), required=False),
                responses=_responses(
                    (
                        202,
                        ok(
                            "The payment, REFUND_PENDING, with its refunds",
                            ref(PaymentDetail),
                            headers={"Location": _header("`/payments/{id}`")},
                        ),
                    ),
                    (
                        400,
                        BAD_BODY_OR_KEY,
                    ),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    (404, problem(404, "No such order")),
                    (
                        409,
                        problem(
                            409,
                            "The payment never succeeded, or the order is archived; `payment_status` says "
                            "where the payment is",
                            "not-refundable",
                        ),
                    ),
                    (413, TOO_LARGE),
                    (
                        422,
                        invalid(
                            "An invalid body, more than is left to refund (`left_cents` says how much "
                            "is), or a key used before for another order",
                            REFUND_TOO_LARGE,
                            IDEMPOTENCY_KEY_REUSED,
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/orders/{order_id}/payment": {
            "post": operation(
                "changeOrderPayment",
                "Pay an order awaiting payment another way",
                "payments",
                security=CUSTOMER,
                description="The current payment attempt is given up (CANCELLED, voided at the provider) "
                "and a new one, for the same amount, becomes the order's `payment`; every attempt is "
                "listed under `payments`. The hold keeps its expiry. Should the replaced attempt succeed "
                "anyway, it is refunded in full and the order stays on its current attempt. Without "
                "`payment`, the account's default payment method pays (422 when it has none). Only "
                "while the order is AWAITING_PAYMENT; the order's owner only (the admin token: 403).",
                parameters=[order_id, param("IdempotencyKey")],
                body=json_body(ref(PaymentChangeBody)),
                responses=_responses(
                    (
                        202,
                        _order_created(
                            "The order, its new attempt current (on a replay: the order as it is now)"
                        ),
                    ),
                    (
                        400,
                        BAD_BODY_OR_KEY,
                    ),
                    (401, NEEDS_TOKEN),
                    (403, problem(403, "The admin token: only the order's owner changes how it is paid")),
                    (404, problem(404, "No such order among the caller's")),
                    (
                        409,
                        problem(
                            409,
                            "The order no longer awaits payment (`order_status` says what it is)",
                            PAYMENT_NOT_CHANGEABLE,
                        ),
                    ),
                    (413, TOO_LARGE),
                    (
                        422,
                        invalid(
                            "The body breaks a constraint (no `payment` and no default payment method "
                            "included), or the key was used before with another body or for another order",
                            IDEMPOTENCY_KEY_REUSED,
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            )
        },
        # -- cart and wishlist --
        "/cart": {
            "get": operation(
                "getCart",
                "The caller's cart, priced from the catalogue as it is now",
                "cart",
                security=CUSTOMER,
                responses=_responses(
                    (200, ok("The cart", ref(Cart))), (401, NEEDS_TOKEN), (403, NO_CART), (503, UNAVAILABLE)
                ),
            )
        },
        "/cart/items/{sku}": {
            "put": operation(
                "setCartLine",
                "Put a quantity of an item in the cart (replacing any)",
                "cart",
                security=CUSTOMER,
                parameters=[sku],
                body=json_body(ref(CartQuantity)),
                responses=_responses(
                    (200, ok("The cart", ref(Cart))),
                    (400, MALFORMED),
                    (401, NEEDS_TOKEN),
                    (403, NO_CART),
                    (404, problem(404, "No such item")),
                    (413, TOO_LARGE),
                    (
                        422,
                        invalid(
                            "The body breaks a constraint, or the cart already holds 50 different items",
                            "cart-full",
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            ),
            "delete": operation(
                "removeCartLine",
                "Take an item out of the cart (also when it is not there)",
                "cart",
                security=CUSTOMER,
                parameters=[param("AnySku")],
                responses=_responses(
                    (200, ok("The cart", ref(Cart))), (401, NEEDS_TOKEN), (403, NO_CART), (503, UNAVAILABLE)
                ),
            ),
        },
        "/cart/checkout": {
            "post": operation(
                "checkout",
                "Order what is in the cart",
                "cart",
                security=CUSTOMER,
                description="Like `POST /orders` with the cart's lines, priced when the order is made; the "
                "lines leave the cart once the order is placed (a failed payment leaves the cart as it "
                "was). Keys are separate from those of `POST /orders`.",
                parameters=[param("IdempotencyKey")],
                body=json_body(ref(Checkout)),
                responses=_responses(
                    (202, _order_created("The order (PENDING), or the one this key made before")),
                    *_ORDER_PLACING_ERRORS,
                    (403, NO_CART),
                    (
                        422,
                        invalid(
                            "The cart is empty, the body breaks a constraint, the key was used with another "
                            "body, or the items are priced in different currencies",
                            IDEMPOTENCY_KEY_REUSED,
                            CURRENCY_MISMATCH,
                            "empty-cart",
                        ),
                    ),
                ),
            )
        },
        "/wishlist": {
            "get": operation(
                "getWishlist",
                "The caller's wishlist",
                "wishlist",
                security=CUSTOMER,
                responses=_responses(
                    (200, ok("The wishlist", ref(Wishlist))),
                    (401, NEEDS_TOKEN),
                    (403, NO_CART),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/wishlist/{sku}": {
            "put": operation(
                "addToWishlist",
                "Keep an item for later (again: no change)",
                "wishlist",
                security=CUSTOMER,
                parameters=[sku],
                responses=_responses(
                    (200, ok("The wishlist", ref(Wishlist))),
                    (401, NEEDS_TOKEN),
                    (403, NO_CART),
                    (404, problem(404, "No such item")),
                    (503, UNAVAILABLE),
                ),
            ),
            "delete": operation(
                "removeFromWishlist",
                "Forget an item (also when it is not there)",
                "wishlist",
                security=CUSTOMER,
                parameters=[param("AnySku")],
                responses=_responses(
                    (200, ok("The wishlist", ref(Wishlist))),
                    (401, NEEDS_TOKEN),
                    (403, NO_CART),
                    (503, UNAVAILABLE),
                ),
            ),
        },
        # -- payments --
        "/payments/{payment_id}": {
            "get": operation(
                "getPayment",
                "One payment (its order's owner, or the operator)",
                "payments",
                security=CUSTOMER_OR_ADMIN,
                parameters=[param("PaymentId")],
                responses=_responses(
                    (200, ok("The payment", ref(PaymentDetail))),
                    (401, NEEDS_TOKEN),
                    (404, problem(404, "No such payment among the caller's")),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/payments/webhook": {
            "post": operation(
                "receivePaymentEvent",
                "The payment provider's signed events",
                "payments",
                security=PUBLIC,
                description='Verified (HMAC-SHA256 over `"{t}.{raw body}"`, 300 s tolerance), recorded once '
                "per event id and handed to the `settle` step. Any verified event is answered 200. "
                "With `PSP_PROVIDER=sandbox` the body is the sandbox provider's event (below), signed "
                f"in `{SIGNATURE_HEADER}`; with `PSP_PROVIDER=stripe` it is a Stripe Event, signed in "
                "`Stripe-Signature` with the endpoint's `STRIPE_WEBHOOK_SECRET` (each mode refuses the "
                "other's signature). Stripe events of types the fleet does not act on are answered 200 "
                "and not recorded.",
                parameters=[
                    {
                        "name": SIGNATURE_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "With `PSP_PROVIDER=sandbox`: `t=<unix time>,v1=<hex HMAC-SHA256>`",
                        "schema": {"type": "string", "example": "t=1700000000,v1=5257a869e7..."},
                    },
                    {
                        "name": STRIPE_SIGNATURE_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "With `PSP_PROVIDER=stripe`: `t=<unix time>,v1=<hex HMAC-SHA256>`",
                        "schema": {"type": "string", "example": "t=1700000000,v1=5257a869e7..."},
                    },
                ],
                body=json_body(ref(WebhookEvent)),
                responses=_responses(
                    (200, ok("Recorded (or seen before)", ref(WebhookAck))),
                    (
                        400,
                        problem(
                            400,
                            "A missing or wrong signature, or a body that is not an event",
                            INVALID_SIGNATURE,
                            INVALID_EVENT,
                        ),
                    ),
                    (413, TOO_LARGE),
                    (503, UNAVAILABLE),
                ),
            )
        },
        # -- operations --
        "/admin/reconciliation": {
            "get": operation(
                "getReconciliation",
                "The latest stock reconciliation report",
                "operations",
                security=ADMIN,
                responses=_responses(
                    (200, ok("The report with the drift it found", ref(ReconciliationReport))),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    (404, problem(404, "No reconciliation has run yet")),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/healthz": {
            "get": operation(
                "healthz",
                "Liveness: the process answers (checks no dependency)",
                "operations",
                security=PUBLIC,
                responses=_responses((200, ok("Alive", ref(Health)))),
            )
        },
        "/readyz": {
            "get": operation(
                "readyz",
                "Readiness: database, broker and Redis answer",
                "operations",
                security=PUBLIC,
                description="Ready needs the database and the broker; Redis is reported but optional.",
                responses=_responses(
                    (200, ok("Ready", ref(Readiness))),
                    (503, problem(503, "Not ready: `checks` says what is down", NOT_READY)),
                ),
            )
        },
        "/metrics": {
            "get": operation(
                "metrics",
                "Prometheus metrics",
                "operations",
                security=PUBLIC,
                responses=_responses(
                    (
                        200,
                        {
                            "description": "Prometheus text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                    )
                ),
            )
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                "operations",
                security=PUBLIC,
                responses=_responses((200, ok("The OpenAPI 3.0 document", {"type": "object"}))),
            )
        },
        "/docs": {
            "get": operation(
                "docs",
                "This document, readable (Swagger UI)",
                "operations",
                security=PUBLIC,
                responses=_responses(
                    (
                        200,
                        {
                            "description": "An HTML page",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                    )
                ),
            )
        },
    }


def _return_paths() -> dict[str, dict]:
    """The returns of delivered orders: the customer's request and reads, the operator's moves."""
    order_id = param("OrderId")
    return_id = {
        "name": "return_id",
        "in": "path",
        "required": True,
        "schema": {**ID_SCHEMA, "maxLength": MAX_RETURN_ID_LENGTH},
        "description": "The return's id; a return of another customer's order answers 404 like a missing one",
    }
    found = (404, problem(404, "No such return among the caller's orders'"))
    returned = ok("The return", ref(Return), headers={"Location": _header("`/returns/{id}`")})
    return {
        "/orders/{order_id}/returns": {
            "post": operation(
                "requestReturn",
                "Ask to send delivered items back",
                "orders",
                security=CUSTOMER,
                description="For a DELIVERED order, within RETURN_WINDOW_SECONDS of its delivery, and for "
                "at most the units delivered less those already in a return that was not rejected. The "
                "return starts REQUESTED; the operator receives it (its value is then refunded) or "
                "rejects it. The order's customer only (the admin token: 403).",
                parameters=[order_id, param("IdempotencyKey")],
                body=json_body(ref(NewReturn)),
                responses=_responses(
                    (
                        201,
                        ok(
                            "The return (REQUESTED), or the one this key made before",
                            ref(Return),
                            headers={"Location": _header("`/returns/{id}`")},
                        ),
                    ),
                    (
                        400,
                        BAD_BODY_OR_KEY,
                    ),
                    (401, NEEDS_TOKEN),
                    (403, problem(403, "The admin token: returns are asked for by the order's customer")),
                    (404, problem(404, "No such order among the caller's")),
                    (
                        409,
                        problem(
                            409,
                            "The order is not delivered, its return window has closed, or it is archived; "
                            "`order_status` says where it is",
                            "not-returnable",
                        ),
                    ),
                    (413, TOO_LARGE),
                    (
                        422,
                        invalid(
                            "The body breaks a constraint, a SKU is not in the order or appears twice, a "
                            "quantity is more than is left to return (`limit` says how many are), or the "
                            "key was used for another order or with another body",
                            IDEMPOTENCY_KEY_REUSED,
                        ),
                    ),
                    (503, UNAVAILABLE),
                ),
            ),
            "get": operation(
                "listReturns",
                "An order's returns, oldest first",
                "orders",
                security=CUSTOMER_OR_ADMIN,
                parameters=[order_id],
                responses=_responses(
                    (200, ok("The returns (archived orders' too)", ref(ReturnList))),
                    (401, NEEDS_TOKEN),
                    (404, problem(404, "No such order among the caller's")),
                    (503, UNAVAILABLE),
                ),
            ),
        },
        "/returns/{return_id}": {
            "get": operation(
                "getReturn",
                "One return",
                "orders",
                security=CUSTOMER_OR_ADMIN,
                parameters=[return_id],
                responses=_responses(
                    (200, ok("The return", ref(Return))), (401, NEEDS_TOKEN), found, (503, UNAVAILABLE)
                ),
            )
        },
        "/returns/{return_id}/receive": {
            "post": operation(
                "receiveReturn",
                "The goods of a return arrived",
                "fulfilment",
                security=ADMIN,
                description="The return becomes RECEIVED; with `restock` its units go back to `available`. "
                "Its lines' value at the prices paid is refunded (at most what is left of the payment): "
                "the `refund` step asks the provider, whose confirmation makes the return REFUNDED "
                "(at once when nothing was left to refund). Receiving again answers the same and changes "
                "nothing.",
                parameters=[return_id],
                body=json_body(ref(ReturnReceipt)),
                responses=_responses(
                    (202, returned),
                    (400, MALFORMED),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    found,
                    (
                        409,
                        problem(
                            409, "The return was rejected; `return_status` says so", "illegal-return-move"
                        ),
                    ),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (503, UNAVAILABLE),
                ),
            )
        },
        "/returns/{return_id}/reject": {
            "post": operation(
                "rejectReturn",
                "Refuse a return",
                "fulfilment",
                security=ADMIN,
                description="The return becomes REJECTED and its units can be asked for again. Rejecting "
                "again answers the same and changes nothing.",
                parameters=[return_id],
                body=json_body(ref(ReturnRejection)),
                responses=_responses(
                    (200, ok("The return, REJECTED", ref(Return))),
                    (400, MALFORMED),
                    (401, NEEDS_ADMIN),
                    (403, NOT_ADMIN),
                    found,
                    (
                        409,
                        problem(
                            409,
                            "The return was received already; `return_status` says where it is",
                            "illegal-return-move",
                        ),
                    ),
                    (413, TOO_LARGE),
                    (422, invalid()),
                    (503, UNAVAILABLE),
                ),
            )
        },
    }


TAGS = [
    {"name": "accounts", "description": "Customer accounts and sign-in"},
    {"name": "catalogue", "description": "Items and stock: reads are public, writes need the admin token"},
    {"name": "orders", "description": "A customer sees only their own orders; the operator sees all"},
    {"name": "fulfilment", "description": "The operator's side of an order"},
    {"name": "cart", "description": "The customer's cart and checking it out"},
    {"name": "wishlist", "description": "Items a customer keeps for later"},
    {"name": "payments", "description": "Payments, refunds and the provider's webhook"},
    {"name": "operations", "description": "Health, readiness, metrics, reports and this description"},
]

DESCRIPTION = """\
Order-processing backend: customers open accounts and place orders; the order's stock is held
while the payment is requested, and workers carry the order through its statuses
(PENDING, AWAITING_PAYMENT, PLACED, SHIPPED, DELIVERED; or REJECTED / CANCELLED with a reason).

- Bodies are JSON; money is integer minor units (`*_cents`) with a `currency`; times are ISO 8601 UTC.
- Errors are `application/problem+json` (`type`, `title`, `status`, `detail`, and `field` naming
  the offending field where there is one).
- Customers send `Authorization: Bearer <access_token>` from `POST /auth/token`; the operator sends
  the `ADMIN_TOKEN` the same way.
- `POST /orders` and `POST /cart/checkout` need an `Idempotency-Key` header: retry with the same key.
"""


def _version() -> str:
    try:
        return metadata.version("order-fleet")
    except metadata.PackageNotFoundError:
        return "0.0.0"


@lru_cache(maxsize=1)
def _spec() -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Order fleet API", "version": _version(), "description": DESCRIPTION},
        "tags": TAGS,
        "paths": {**_paths(), **_return_paths()},
        "components": {
            "schemas": body_schemas(),
            "parameters": PARAMETERS,
            "securitySchemes": {
                "customerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "`access_token` of `POST /auth/token`",
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The operator's `ADMIN_TOKEN` (operations marked admin)",
                },
            },
        },
    }


def build_spec() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_spec())
