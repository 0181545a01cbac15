"""How a customer pays: the ``payment`` of an order, and the default payment method of an account.

The only thing ever stored is a token the payment provider issued (``pm_...``): never card data.
Anything that could be a card number is refused wherever a token is accepted: 12 or more digits
in one chain, however they are grouped (spaces of any kind, dashes, dots, underscores...) and
whatever their Luhn check digit (:func:`models.card_numbers.could_be_card_number`; the token
fields are declared in :mod:`gateway.payments.schemas`). A client that
mistakes the token field for a card field gets a 422 naming the field, which never repeats the
number, instead of having it written to our database and logs.

An order that names no ``payment`` is paid with the account's default token; without one it is
refused (422), since the gateway has no other way to ask for the money.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
from msgspec import UnsetType

from gateway.http.problems import INVALID_REQUEST, Problem
from gateway.payments.schemas import DefaultPaymentMethod, PaymentRequest


class HoldsDefaultToken(Protocol):
    """An account, or the row of one locked for a new order."""

    @property
    def default_payment_token(self) -> str | None: ...


def payment_fields(payment: PaymentRequest | UnsetType | None) -> dict[str, Any] | None:
    """The ``payment`` of an order or checkout body as stored with the order; None when not named."""
    if payment is None or isinstance(payment, UnsetType):
        return None
    return msgspec.to_builtins(payment)


def default_payment_method(account: HoldsDefaultToken) -> DefaultPaymentMethod | None:
    """The account's default payment method as its owner sees it, or None."""
    token = account.default_payment_token
    return DefaultPaymentMethod(token=token) if token else None


def payment_for(requested: dict[str, Any] | None, account: HoldsDefaultToken) -> dict[str, Any]:
    """The payment of a new order: as requested, else the account's default token; 422 when neither."""
    if requested is not None:
        return requested
    default = default_payment_method(account)
    if default is None:
        raise Problem(
            INVALID_REQUEST,
            "payment: is required, as this account has no default payment method "
            "(set one with PATCH /accounts/me)",
            field="payment",
        )
    stored: dict[str, Any] = msgspec.to_builtins(default)
    return stored
