"""The document's schemas, generated from the types that read the requests and write the answers.

Request bodies are the types the handlers decode; response bodies are the types the handlers
encode; query parameters take their schemas from the query types that check them. Each is
declared once, in its feature's ``schemas`` module (or, for the order documents domain events
carry too, in :mod:`models.documents`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

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
from gateway.http.auth import Token
from gateway.http.problem_body import Problem
from gateway.openapi.dialect import openapi_30
from gateway.operations.schemas import Health, Readiness, ReconciliationReport
from gateway.orders.schemas import NewOrder, OrderListQuery, OrderPage, ServerSentEvent, ShippingAddressChange
from gateway.payments.schemas import PaymentChangeBody, PaymentDetail, RefundBody, WebhookAck, WebhookEvent
from gateway.returns.schemas import NewReturn, ReturnList, ReturnReceipt, ReturnRejection
from models.documents import Order, Return, StatusEvent

Schema = dict[str, Any]

#: Every request body of the API; the types they refer to (``OrderLineRequest``, ...) come along.
REQUEST_BODIES: tuple[type, ...] = (
    NewAccount,
    AccountChanges,
    Credentials,
    NewItem,
    StockReceipt,
    NewOrder,
    ShippingAddressChange,
    CartQuantity,
    Checkout,
    RefundBody,
    PaymentChangeBody,
    WebhookEvent,
    NewReturn,
    ReturnReceipt,
    ReturnRejection,
)
#: Every response body of the API (problems included), and the types they refer to likewise.
RESPONSE_BODIES: tuple[type, ...] = (
    Account,
    Token,
    Item,
    ItemPage,
    StockLevel,
    Receipts,
    Order,
    OrderPage,
    ServerSentEvent,
    StatusEvent,
    Cart,
    Wishlist,
    PaymentDetail,
    WebhookAck,
    Health,
    Readiness,
    ReconciliationReport,
    Return,
    ReturnList,
    Problem,
)
#: The query strings the API reads: the source of its query parameters' schemas, not bodies.
QUERIES: tuple[type, ...] = (OrderListQuery, ItemListQuery)
REF_TEMPLATE = "#/components/schemas/{name}"


@lru_cache(maxsize=1)
def _generated() -> dict[str, Schema]:
    # One generation for all, so a type several of them use is one component under one name.
    _, components = msgspec.json.schema_components(
        (*REQUEST_BODIES, *RESPONSE_BODIES, *QUERIES), ref_template=REF_TEMPLATE
    )
    return {name: openapi_30(schema) for name, schema in components.items()}


def body_schemas() -> dict[str, Schema]:
    """``components.schemas`` entries for every request and response body and the types they use."""
    queries = {query_type.__name__ for query_type in QUERIES}
    return {name: schema for name, schema in _generated().items() if name not in queries}


def query_schema(query_type: type, name: str) -> Schema:
    """The schema of the query parameter ``name`` as ``query_type`` checks it."""
    schema: Schema = _generated()[query_type.__name__]["properties"][name]
    # An empty parameter counts as absent (gateway.http.paging.page_query): it is never too short.
    return {key: value for key, value in schema.items() if key != "minLength"}


def value_schema(value_type: Any) -> Schema:
    """The schema of a value of ``value_type`` (a path parameter's, say), inline."""
    schema: Schema = openapi_30(msgspec.json.schema(value_type))
    return schema


def ref(body_type: type) -> dict[str, str]:
    """A reference to ``body_type``'s schema."""
    return {"$ref": REF_TEMPLATE.format(name=body_type.__name__)}
