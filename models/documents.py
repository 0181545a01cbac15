"""The order documents every producer shows (the API, live updates, domain events), declared once.

Each is a :class:`msgspec.Struct`: the gateway encodes it as the answer, domain events carry its
builtins (:func:`msgspec.to_builtins`), and the API description's schema is generated from it.
Statuses and reasons are typed as the strings the rows hold, with their enum's values as the
schema's ``enum``: no conversion is spent on the hot read path.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from models.state import OrderStatus, PaymentStatus, Reason, RefundStatus, ReturnStatus

#: Ids of orders, payments and accounts (:func:`models.tables.new_id`).
Id = Annotated[str, Meta(pattern="^[0-9a-f]{32}$", description="32 lower-case hex digits")]
#: A moment as :func:`models.clock.isoformat` writes it.
Time = Annotated[
    str, Meta(description="ISO 8601, UTC, ending in `Z`", extra_json_schema={"format": "date-time"})
]
#: An ISO 4217 code, as items are priced in.
CurrencyCode = Annotated[
    str, Meta(min_length=3, max_length=3, pattern="^[A-Z]{3}$", description="ISO 4217 code", examples=["USD"])
]
#: An amount of money in minor units.
Cents = Annotated[int, Meta(ge=0)]

OrderStatusName = Annotated[str, Meta(extra_json_schema={"enum": [status.value for status in OrderStatus]})]
PaymentStatusName = Annotated[
    str, Meta(extra_json_schema={"enum": [status.value for status in PaymentStatus]})
]
ReasonName = Annotated[str, Meta(extra_json_schema={"enum": [reason.value for reason in Reason]})]
RefundStatusName = Annotated[str, Meta(extra_json_schema={"enum": [status.value for status in RefundStatus]})]
ReturnStatusName = Annotated[str, Meta(extra_json_schema={"enum": [status.value for status in ReturnStatus]})]
#: A postal address as the client sent it (an object of strings, kept as given).
Address = Annotated[
    dict[str, str], Meta(description="A postal address, e.g. {line1, city, postal_code, country}")
]

#: How an order came to be: ``POST /orders``, or a checkout of the cart.
ORDER_SOURCES = ("api", "cart")
#: How a payment is made: with a provider token, or on the provider's page.
PAYMENT_METHODS = ("token", "redirect")


class OrderLine(Struct):
    """One line of an order."""

    sku: str
    quantity: Annotated[int, Meta(ge=1)]
    unit_price_cents: (
        Annotated[
            int,
            Meta(
                ge=0,
                description="The catalogue's price when the order was taken; null for a SKU not in the "
                "catalogue (the order is then rejected as `unknown_item`)",
            ),
        ]
        | None
    )


class Payment(Struct):
    """The customer-visible part of a payment attempt."""

    id: Id
    attempt: Annotated[int, Meta(ge=1, description="1 for the first attempt; a changed method adds one")]
    status: PaymentStatusName
    method: Annotated[str, Meta(extra_json_schema={"enum": list(PAYMENT_METHODS)})]
    amount_cents: Cents
    refunded_cents: Annotated[int, Meta(ge=0, description="What the provider confirmed it gave back")]
    currency: CurrencyCode
    provider_payment_id: (
        Annotated[str, Meta(description="The payment provider's id, once it has answered")] | None
    )
    checkout_url: Annotated[str, Meta(description="Where the customer pays (method `redirect`)")] | None


class Refund(Struct):
    """One refund of (part of) a payment."""

    id: Id
    amount_cents: Annotated[int, Meta(ge=1)]
    status: RefundStatusName
    reason: str | None
    return_id: Annotated[Id, Meta(description="The return this refund pays back")] | None
    created_at: Time


class ReturnLine(Struct):
    """What a return sends back of one order line, at the price paid."""

    sku: str
    quantity: Annotated[int, Meta(ge=1)]
    unit_price_cents: Cents


class Return(Struct):
    """A return of delivered items."""

    id: Id
    order_id: Id
    status: ReturnStatusName
    items: list[ReturnLine]
    reason: str | None
    rejection_reason: str | None
    restocked: Annotated[bool, Meta(description="Whether the received units went back on sale")] | None
    refund_id: Annotated[Id, Meta(description="The refund paying back the received lines")] | None
    created_at: Time
    updated_at: Time


class HistoryEntry(Struct):
    """One status the order entered, and when."""

    status: OrderStatusName
    reason: ReasonName | None
    note: str | None
    at: Time


class Order(Struct):
    """An order as `GET /orders/{id}` shows it (and domain events carry it)"""

    id: Id
    archived: Annotated[bool, Meta(description="Moved to history (still found everywhere)")]
    source: Annotated[
        str,
        Meta(
            description="`cart` for an order made by `POST /cart/checkout`",
            extra_json_schema={"enum": list(ORDER_SOURCES)},
        ),
    ]
    status: OrderStatusName
    reason: Annotated[ReasonName, Meta(description="Why the order was rejected or cancelled")] | None
    items: list[OrderLine]
    total_cents: Cents
    currency: CurrencyCode
    hold_expires_at: Time | None
    shipping_address: Address | None
    payment: Annotated[Payment, Meta(description="The current payment attempt")] | None
    payments: Annotated[list[Payment], Meta(description="Every payment attempt, oldest first")]
    refunded_cents: Annotated[int, Meta(ge=0, description="What the provider confirmed it refunded")]
    returns: list[Return]
    history: list[HistoryEntry]
    created_at: Time
    updated_at: Time


class StatusEvent(Struct):
    """The `data` of a `status` event: the order's status and when it was entered"""

    id: Id
    status: OrderStatusName
    reason: ReasonName | None
    at: Time | None
