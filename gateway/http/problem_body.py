"""The body of every error answer (RFC 9457 problem details), declared once for the answers and the
API description alike."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from models.documents import OrderStatusName, PaymentStatusName, ReturnStatusName

PROBLEM_BASE = "https://orders.example/problems/"


class Problem(Struct, kw_only=True):
    """RFC 9457 problem details"""

    type: Annotated[str, Meta(description=f"`about:blank` or a URI under `{PROBLEM_BASE}`")]
    title: str
    status: Annotated[int, Meta(ge=400, le=599)]
    detail: str
    # The extension members a problem may carry; a member left UNSET is not written.
    field: Annotated[str, Meta(description="The offending field, e.g. `items[2].quantity`")] | UnsetType = (
        UNSET
    )
    order_status: (
        Annotated[
            OrderStatusName, Meta(description="The order's status, when that is why the request was refused")
        ]
        | UnsetType
    ) = UNSET
    payment_status: (
        Annotated[
            PaymentStatusName, Meta(description="The payment's status, when that is why a refund was refused")
        ]
        | UnsetType
        | None
    ) = UNSET
    return_status: (
        Annotated[
            ReturnStatusName, Meta(description="The return's status, when that is why a move was refused")
        ]
        | UnsetType
    ) = UNSET
    limit: Annotated[int, Meta(description="The limit that was reached")] | UnsetType = UNSET
    left_cents: (
        Annotated[int, Meta(ge=0, description="What is left to refund, when more was asked")] | UnsetType
    ) = UNSET
    checks: Annotated[dict[str, str], Meta(description="Readiness: each dependency's state")] | UnsetType = (
        UNSET
    )
