"""The bodies of the cart: a line's quantity and a checkout."""

from __future__ import annotations

from msgspec import UNSET, Struct, UnsetType

from gateway.orders.schemas import Quantity, ShippingAddress
from gateway.payments.schemas import PaymentRequest


class CartQuantity(Struct, forbid_unknown_fields=True):
    """How many of the item the cart holds."""

    quantity: Quantity


class Checkout(Struct, forbid_unknown_fields=True):
    """What `POST /orders` takes, less `items`: the cart says what is ordered"""

    payment: PaymentRequest | UnsetType | None = UNSET
    shipping_address: ShippingAddress | UnsetType | None = UNSET
