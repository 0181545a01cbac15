"""The document's body schemas, generated from the types that read those bodies."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from gateway.accounts.schemas import AccountChanges, Credentials, NewAccount
from gateway.cart.schemas import CartQuantity, Checkout
from gateway.catalogue.schemas import NewItem, StockReceipt
from gateway.openapi.dialect import openapi_30
from gateway.orders.schemas import NewOrder
from gateway.payments.schemas import RefundBody, WebhookEvent

#: Every request body of the API; the types they refer to (``OrderLineRequest``, ...) come along.
REQUEST_BODIES: tuple[type, ...] = (
    NewAccount,
    AccountChanges,
    Credentials,
    NewItem,
    StockReceipt,
    NewOrder,
    CartQuantity,
    Checkout,
    RefundBody,
    WebhookEvent,
)
REF_TEMPLATE = "#/components/schemas/{name}"


@lru_cache(maxsize=1)
def body_schemas() -> dict[str, dict[str, Any]]:
    """``components.schemas`` entries for every request body and the types it uses."""
    _, components = msgspec.json.schema_components(REQUEST_BODIES, ref_template=REF_TEMPLATE)
    return {name: openapi_30(schema) for name, schema in components.items()}


def ref(body_type: type) -> dict[str, str]:
    """A reference to ``body_type``'s schema."""
    return {"$ref": REF_TEMPLATE.format(name=body_type.__name__)}
