"""The bodies of returns: a customer's request, the operator's receipt and rejection; and the list of
an order's returns. A return itself is :class:`models.documents.Return`, as order documents show it."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.catalogue.skus import Sku
from gateway.orders.schemas import MAX_LINES, Quantity
from models.documents import Return

MAX_REASON_LENGTH = 500


class ReturnItemRequest(Struct, forbid_unknown_fields=True):
    """Units of one delivered line to send back."""

    sku: Sku
    quantity: Quantity


class NewReturn(Struct, forbid_unknown_fields=True):
    """A return of delivered items: at most what was delivered, less what other returns (not
    rejected) already claim."""

    items: Annotated[
        list[ReturnItemRequest],
        Meta(
            min_length=1,
            max_length=MAX_LINES,
            description="One entry per SKU of the order (SKUs compare case-insensitively)",
        ),
    ]
    reason: Annotated[str, Meta(max_length=MAX_REASON_LENGTH, description="Why, in the customer's words")] | (
        UnsetType | None
    ) = UNSET


class ReturnReceipt(Struct, forbid_unknown_fields=True):
    """The goods of a return arrived."""

    restock: Annotated[bool, Meta(description="Put the returned units back on sale (`available`)")]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must say something")
    return value


class ReturnRejection(Struct, forbid_unknown_fields=True):
    """A return the operator refuses."""

    reason: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_REASON_LENGTH,
            description="Why, for the customer (not only spaces)",
            extra={"check": _not_blank},
        ),
    ]


class ReturnList(Struct):
    """An order's returns, oldest first"""

    returns: list[Return]
