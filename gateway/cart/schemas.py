"""The bodies of the cart: a line's quantity and a checkout; and the cart and wishlist as shown."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.orders.schemas import MAX_LINES, Quantity, ShippingAddress
from gateway.payments.schemas import PaymentRequest
from models.documents import Cents, CurrencyCode, Time

# As many lines as one POST /orders may carry, so every cart can be checked out.
MAX_CART_LINES = MAX_LINES

#: Units of an item that can be ordered now.
Available = Annotated[int, Meta(ge=0)]


class CartQuantity(Struct, forbid_unknown_fields=True):
    """How many of the item the cart holds."""

    quantity: Quantity


class Checkout(Struct, forbid_unknown_fields=True):
    """What `POST /orders` takes, less `items`: the cart says what is ordered"""

    payment: PaymentRequest | UnsetType | None = UNSET
    shipping_address: ShippingAddress | UnsetType | None = UNSET


class CartLine(Struct):
    """Priced from the catalogue as it is now; an item gone from the catalogue is kept, `unknown`, with
    nulls"""

    sku: str
    quantity: Annotated[int, Meta(ge=1)]
    name: str | None
    unit_price_cents: Cents | None
    currency: CurrencyCode | None
    available: Available | None
    line_total_cents: Cents | None
    unknown: bool


class Cart(Struct):
    """The cart, priced from the catalogue as it is now"""

    items: Annotated[list[CartLine], Meta(max_length=MAX_CART_LINES)]
    total_cents: (
        Annotated[
            int, Meta(ge=0, description="Of the known items; null when they are in different currencies")
        ]
        | None
    )
    currency: Annotated[CurrencyCode, Meta(description="null for an empty cart or mixed currencies")] | None


class WishlistEntry(Struct):
    """An item kept for later, with the catalogue's current data"""

    sku: str
    name: str | None
    price_cents: Cents | None
    currency: CurrencyCode | None
    available: Available | None
    added_at: Time
    unknown: Annotated[bool, Meta(description="The item has left the catalogue")]


class Wishlist(Struct):
    """The items a customer keeps for later"""

    items: Annotated[list[WishlistEntry], Meta(description="Oldest entry first")]
