"""The bodies and query of orders: a new order, a change of its shipping address, the filters of
the order list, a page of orders and the events of an order's live updates."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.catalogue.skus import Sku
from gateway.http.fields import Address
from gateway.http.paging import DEFAULT_LIMIT, PageLimit
from gateway.payments.schemas import PaymentRequest
from models.documents import Order
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


class ShippingAddressChange(Struct, forbid_unknown_fields=True):
    """A new shipping address for an order that has not shipped yet."""

    shipping_address: Annotated[
        Address,
        Meta(
            description="Where the order goes from now on; null is refused",
            extra={"null_error": "must be an address object: an order's address can be changed, not removed"},
        ),
    ]


class OrderListQuery(Struct, forbid_unknown_fields=True):
    """The filters of ``GET /orders`` (an empty parameter counts as absent)."""

    status: OrderStatus | UnsetType = UNSET
    limit: PageLimit = DEFAULT_LIMIT


class OrderPage(Struct):
    """One page of orders, newest first"""

    orders: list[Order]
    next_cursor: Annotated[str, Meta(description="null on the last page")] | None


class ServerSentEvent(Struct):
    """One event of `GET /orders/{order_id}/events` (the schema of a text/event-stream describes each
    event): `event: status`, `data:` a `StatusEvent` as JSON"""

    event: Literal["status"]
    data: Annotated[
        str,
        Meta(
            min_length=2,
            examples=[
                '{"id": "9f1c...", "status": "PLACED", "reason": null, "at": "2026-01-01T00:00:00.000Z"}'
            ],
        ),
    ]

    def frame(self) -> bytes:
        """The event as the stream sends it."""
        return f"event: {self.event}\ndata: {self.data}\n\n".encode()
