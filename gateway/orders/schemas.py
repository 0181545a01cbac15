"""The bodies and query of orders: a new order and the filters of the order list."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.catalogue.skus import Sku
from gateway.http.fields import Address
from gateway.http.paging import DEFAULT_LIMIT, PageLimit
from gateway.payments.schemas import PaymentRequest
from models.state import OrderStatus

MAX_LINES = 50
MAX_QUANTITY = 1000

#: How many of one item a line (or a cart line) may hold.
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
#: Where an order goes; the account's shipping address when absent, none when null.
ShippingAddress = Annotated[
    Address, Meta(description="The account's shipping address when absent; null for none")
]


class OrderLineRequest(Struct, forbid_unknown_fields=True):
    """One line of a new order."""

    sku: Sku
    quantity: Quantity


class NewOrder(Struct, forbid_unknown_fields=True):
    """An order to place. Without `payment`, the account's default payment method pays (422 when it
    has none)."""

    items: Annotated[
        list[OrderLineRequest],
        Meta(
            min_length=1,
            max_length=MAX_LINES,
            description="One line per SKU (SKUs compare case-insensitively)",
        ),
    ]
    payment: PaymentRequest | UnsetType | None = UNSET
    shipping_address: ShippingAddress | UnsetType | None = UNSET


class OrderListQuery(Struct, forbid_unknown_fields=True):
    """The filters of ``GET /orders`` (an empty parameter counts as absent)."""

    status: OrderStatus | UnsetType = UNSET
    limit: PageLimit = DEFAULT_LIMIT
