"""The bodies of the catalogue (a new item, a stock receipt, the search of the item list) and its
answers: items, a page of them, a stock level and the receipts."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.catalogue.skus import Sku
from gateway.http.fields import Currency, HttpUrl, Name, anchored, free_form
from gateway.http.paging import DEFAULT_LIMIT, PageLimit
from models.documents import Cents, CurrencyCode, Time

# Generous but finite: totals of 50 lines x 1000 units stay far inside a BIGINT.
MAX_PRICE_CENTS = 10**12
# Payment providers refuse amounts below one cent, so a free item could only ever be ordered
# into CANCELLED payment_failed: it is refused when listed instead.
MIN_PRICE_CENTS = 1
MAX_QUERY_LENGTH = 200


class NewItem(Struct, forbid_unknown_fields=True):
    """An item to add to the catalogue, with no stock yet."""

    sku: Sku
    name: Name
    price_cents: Annotated[int, Meta(ge=MIN_PRICE_CENTS, le=MAX_PRICE_CENTS)]
    currency: Annotated[Currency, Meta(description="ISO 4217 code; USD when absent")] | UnsetType | None = (
        UNSET
    )
    upc: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=32,
                pattern=anchored("[0-9A-Za-z-]+"),
                extra={"pattern_error": "must be letters, digits or '-'"},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    picture_urls: Annotated[list[HttpUrl], Meta(max_length=20)] | UnsetType | None = UNSET
    attributes: (
        Annotated[
            dict[str, Any],
            Meta(
                description="Free-form: at most 4096 bytes as JSON, nested at most 4 levels",
                extra={"check": free_form(max_bytes=4096, max_depth=4)},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


class StockReceipt(Struct, forbid_unknown_fields=True):
    """Units received into stock."""

    quantity: Annotated[int, Meta(ge=1, le=1_000_000)]


class ItemListQuery(Struct, forbid_unknown_fields=True):
    """The filters of ``GET /items`` (an empty parameter counts as absent)."""

    q: Annotated[str, Meta(min_length=1, max_length=MAX_QUERY_LENGTH)] | UnsetType = UNSET
    limit: PageLimit = DEFAULT_LIMIT


class Item(Struct):
    """A catalogue item with the quantity that can be ordered now"""

    sku: str
    name: str
    price_cents: Cents
    currency: CurrencyCode
    upc: str | None
    picture_urls: list[str]
    attributes: dict[str, Any]
    available: Annotated[int, Meta(ge=0, description="Units that can be ordered now")]


class ItemPage(Struct):
    """One page of the catalogue, in SKU order"""

    items: list[Item]
    next_cursor: Annotated[str, Meta(description="null on the last page")] | None


class StockLevel(Struct):
    """An item's stock after a receipt"""

    sku: str
    available: Annotated[int, Meta(ge=0)]
    received: Annotated[int, Meta(ge=0)]


class Receipt(Struct):
    """Units booked into stock at one time"""

    quantity: Annotated[int, Meta(ge=1)]
    received_at: Time


class Receipts(Struct):
    """Every stock receipt of an item"""

    receipts: Annotated[list[Receipt], Meta(description="Newest first")]
