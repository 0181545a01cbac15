"""What every ``orders-admin`` command shares: expected errors, redacted URLs, a database, tables."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.clock import isoformat
from models.db import create_engine, create_sessionmaker


class OpsError(Exception):
    """An expected failure of a command: printed as ``error: <message>``, exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A small engine for one command, disposed when the command ends."""
    engine = create_engine(database_url, pool_size=2)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def when(value: datetime | None) -> str | None:
    """A stored naive-UTC time as ISO 8601 with ``Z`` (``None`` stays ``None``)."""
    return isoformat(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "  ") -> list[str]:
    """Rows as left-aligned columns under ``headers``; ``None`` shows as ``-``."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def dump_json(document: Any) -> str:
    """A JSON document for ``--json`` output (times already rendered as strings)."""
    return json.dumps(document, indent=2, sort_keys=False, default=str)


def format_kwargs(kwargs: dict[str, Any] | None) -> str:
    """``order_id=ab12, payment_id=cd34`` for a message's keyword arguments."""
    if not kwargs:
        return ""
    return ", ".join(f"{key}={value}" for key, value in kwargs.items())
