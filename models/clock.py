"""Time as the database stores it: naive UTC datetimes with microseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def utcnow() -> datetime:
    """Current UTC time without tzinfo, the form DATETIME(6) columns hold."""
    return datetime.now(UTC).replace(tzinfo=None)


@overload
def isoformat(value: datetime) -> str: ...
@overload
def isoformat(value: datetime | None) -> str | None: ...


def isoformat(value: datetime | None) -> str | None:
    """Render a stored naive-UTC time as ISO 8601 with a ``Z``."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
