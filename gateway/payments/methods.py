"""How a customer pays: the ``payment`` of an order, and the default payment method of an account.

The only thing ever stored is a token the payment provider issued (``pm_...``): never card data.
Anything that could be a card number is refused wherever a token is accepted: 12 or more digits
in one chain, however they are grouped (spaces of any kind, dashes, dots, underscores...) and
whatever their Luhn check digit (:func:`models.card_numbers.could_be_card_number`). A client that
mistakes the token field for a card field gets a 422 naming the field, which never repeats the
number, instead of having it written to our database and logs.

An order that names no ``payment`` is paid with the account's default token; without one it is
refused (422), since the gateway has no other way to ask for the money.
"""

from __future__ import annotations

from typing import Any

from gateway.http.problems import INVALID_REQUEST, Problem
from gateway.http.validation import ValidationError, Validator, literal, obj, string, tagged
from models.card_numbers import could_be_card_number
from models.tables import Account

MAX_TOKEN_LENGTH = 128


def _no_card_number(validator: Validator) -> Validator:
    def check(value: Any, path: str) -> str:
        # Checked before the token's own shape, so a card number is told why it was refused.
        if isinstance(value, str) and could_be_card_number(value):
            raise ValidationError(
                path,
                "looks like a card number; send the payment provider's token "
                "for the card instead, never the card number",
            )
        return validator(value, path)

    return check


#: A token an order may be paid with (any printable form a provider may use, but no card number).
ORDER_TOKEN = _no_card_number(string(max_length=MAX_TOKEN_LENGTH))
#: A token an account keeps as its default: the provider's id for a saved card, e.g. ``pm_card_ok``.
STORED_TOKEN = _no_card_number(
    string(
        max_length=MAX_TOKEN_LENGTH,
        pattern=r"[A-Za-z0-9_]+",
        what="a payment provider token (letters, digits and '_')",
    )
)

#: ``payment`` of ``POST /orders`` and of a checkout.
PAYMENT = tagged(
    "method",
    {
        "token": obj(required={"method": literal("token"), "token": ORDER_TOKEN}),
        "redirect": obj(required={"method": literal("redirect")}),
    },
)
#: ``default_payment_method`` of ``PATCH /accounts/me`` (``null`` clears it).
DEFAULT_PAYMENT_METHOD = tagged(
    "method",
    {
        "token": obj(required={"method": literal("token"), "token": STORED_TOKEN}),
    },
)


def default_payment_method_json(account: Account) -> dict[str, str] | None:
    """The account's default payment method as its owner sees it, or None."""
    token = account.default_payment_token
    return {"method": "token", "token": token} if token else None


def payment_for(requested: dict[str, Any] | None, account: Account) -> dict[str, Any]:
    """The payment of a new order: as requested, else the account's default token; 422 when neither."""
    if requested is not None:
        return requested
    default = default_payment_method_json(account)
    if default is None:
        raise Problem(
            INVALID_REQUEST,
            "payment: is required, as this account has no default payment method "
            "(set one with PATCH /accounts/me)",
            field="payment",
        )
    return default
