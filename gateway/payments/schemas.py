"""The bodies of payments: how an order is paid, an account's default token, a refund request, the
provider's webhook event; and the answers: a payment and the webhook's acknowledgement."""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.http.fields import anchored
from models.card_numbers import could_be_card_number
from models.documents import PAYMENT_METHODS, Cents, CurrencyCode, Id, PaymentStatusName, Refund, Time

MAX_TOKEN_LENGTH = 128
_CARD_NUMBER_REFUSED = (
    "Never a card number: 12 or more digits in one run, whatever separates them (spaces of any kind, "
    "dashes, dots), are refused (422)"
)


def _no_card_number(token: str) -> str:
    if could_be_card_number(token):
        raise ValueError(
            "looks like a card number; send the payment provider's token for the card instead, "
            "never the card number"
        )
    return token


#: A token an order may be paid with (any printable form a provider may use, but no card number).
OrderToken = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_TOKEN_LENGTH,
        description=_CARD_NUMBER_REFUSED,
        examples=["pm_card_ok"],
        extra={"check": _no_card_number},
    ),
]
#: A token an account keeps as its default: the provider's id for a saved card, e.g. ``pm_card_ok``.
#: Its shape is checked after the card-number check, so a card number is told why it was refused.
_STORED_TOKEN_SHAPE = "[A-Za-z0-9_]+"
_STORED_TOKEN = re.compile(_STORED_TOKEN_SHAPE)


def _stored_token(token: str) -> str:
    _no_card_number(token)
    if not _STORED_TOKEN.fullmatch(token):
        raise ValueError("must be a payment provider token (letters, digits and '_')")
    return token


StoredToken = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_TOKEN_LENGTH,
        examples=["pm_card_ok"],
        extra_json_schema={"pattern": anchored(_STORED_TOKEN_SHAPE)},
        extra={"check": _stored_token},
    ),
]


class TokenPayment(Struct, tag_field="method", tag="token", forbid_unknown_fields=True):
    """Pay with a payment-provider token (sandbox: `pm_card_ok`, `pm_card_declined`,
    `pm_card_no_response`)"""

    token: OrderToken


class RedirectPayment(Struct, tag_field="method", tag="redirect", forbid_unknown_fields=True):
    """Pay on the provider's page: the order's `payment.checkout_url`"""


#: ``payment`` of ``POST /orders`` and of a checkout.
PaymentRequest = TokenPayment | RedirectPayment


class PaymentChangeBody(Struct, forbid_unknown_fields=True):
    """A new way to pay an order awaiting payment. Without `payment`, the account's default payment
    method pays (422 when it has none)."""

    payment: PaymentRequest | UnsetType | None = UNSET


class DefaultPaymentMethod(Struct, tag_field="method", tag="token", forbid_unknown_fields=True):
    """A payment-provider token kept on the account; orders that name no `payment` are paid with it.
    Never card data: 12 or more digits in one run, whatever separates them (spaces of any kind,
    dashes, dots), are refused (422)."""

    token: StoredToken


class RefundBody(Struct, forbid_unknown_fields=True):
    """How much to refund (all that is left when absent) and why; no body is an empty object."""

    amount_cents: (
        Annotated[
            int, Meta(ge=1, le=10**12, description="Part of the captured amount; all that is left if absent")
        ]
        | None
    ) = None
    reason: (
        Annotated[str, Meta(max_length=255, description="Why, for the history and the operator")] | None
    ) = None


class EventMetadata(Struct):
    """What we attached to the provider's payment (or refund); our ids are 32 hex digits, so longer
    is not ours."""

    order_id: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    payment_id: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    refund_id: Annotated[str, Meta(min_length=1, max_length=32)] | None = None


class EventData(Struct):
    """The payment an event is about."""

    payment_id: Annotated[str, Meta(min_length=1, max_length=64)]
    amount_cents: Annotated[int, Meta(ge=0)] | None = None
    currency: Annotated[str, Meta(min_length=1, max_length=16)] | None = None
    metadata: EventMetadata | None = None


class WebhookEvent(Struct):
    """Signed by the provider (header `PSP-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
    "{t}.{raw body}">`); unknown members are kept"""

    id: Annotated[str, Meta(min_length=1, max_length=128, examples=["evt_123"])]
    type: Annotated[str, Meta(min_length=1, max_length=64, examples=["payment.succeeded"])]
    created: Annotated[int, Meta(ge=0)]
    data: EventData


class PaymentDetail(Struct):
    """A payment as `GET /payments/{id}` shows it: no token and no provider secret"""

    id: Id
    order_id: Id
    status: PaymentStatusName
    method: Annotated[str, Meta(extra_json_schema={"enum": list(PAYMENT_METHODS)})]
    amount_cents: Cents
    currency: CurrencyCode
    checkout_url: str | None
    provider_payment_id: (
        Annotated[str, Meta(description="The payment provider's id, once it has answered")] | None
    )
    refunded: Annotated[
        bool, Meta(description="Refunded in full: the confirmed refunds add up to the amount")
    ]
    refunded_cents: Annotated[int, Meta(ge=0, description="What the provider confirmed it refunded")]
    refunds: Annotated[list[Refund], Meta(description="Every refund of this payment, oldest first")]
    created_at: Time
    updated_at: Time


class WebhookAck(Struct):
    """The answer to a verified provider event."""

    received: Annotated[bool, Meta(extra_json_schema={"enum": [True]})]
    duplicate: Annotated[bool, Meta(description="This event id was recorded before")]
