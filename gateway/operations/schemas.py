"""The answers of the operations endpoints: liveness, readiness and the reconciliation report."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from models.documents import Time


class Health(Struct):
    """The process answers"""

    status: Literal["ok"]


class Readiness(Struct):
    """Every required dependency answers"""

    status: Literal["ready"]
    checks: Annotated[
        dict[str, str],
        Meta(
            description="`ok` or `down: <error>` per dependency (database, broker, redis); with "
            "several broker nodes also `broker <host:port>` per node (`broker` is ok while any answers)"
        ),
    ]


class Drift(Struct, kw_only=True):
    """One SKU whose numbers do not add up, and what a repair does (or would do) about it"""

    sku: str
    received: int
    available: int
    held: int
    committed: int
    # Reports written before archived orders were counted lack it.
    committed_archived: int | UnsetType = UNSET
    drift: Annotated[int, Meta(description="received - (available + held + committed)")]
    available_should_be: int
    repaired: bool


class ReconciliationReport(Struct):
    """The latest stock reconciliation, with the drift it found"""

    id: int
    created_at: Time
    skus_checked: Annotated[int, Meta(ge=0)]
    drift_count: Annotated[int, Meta(ge=0)]
    repaired: bool
    drift: list[Drift]
