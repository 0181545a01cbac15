"""Reading the query string of a paged list (``?q=``/``?status=``, ``limit``, ``cursor``).

Cursors are keyset positions (the last entry shown), handed to clients as opaque text: URL-safe
base64 of a small JSON array, so their shape can change later.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from aiohttp import web
from msgspec import Meta

from gateway.http.bodies import convert
from gateway.http.problems import INVALID_CURSOR, Problem

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: Page size of every list.
PageLimit = Annotated[int, Meta(ge=1, le=MAX_LIMIT)]

Query = TypeVar("Query")
Position = TypeVar("Position")

# Far longer than any cursor we hand out; a longer one is refused before decoding.
MAX_CURSOR_LENGTH = 200


def page_query(request: web.Request, query_type: type[Query], filters: tuple[str, ...]) -> Query:
    """The validated ``filters`` and ``limit`` of the request; 422 problems when unusable.

    An empty filter (``?q=``) counts as absent, as form-built URLs often send one; an empty
    ``limit`` is not a number and is refused.
    """
    query: dict[str, object] = {name: value for name in filters if (value := request.query.get(name))}
    if (limit := request.query.get("limit")) is not None:
        # Digits only: int() would also take " 5", "+5" and "1_0", which no client means to send.
        query["limit"] = int(limit) if limit.isascii() and limit.isdigit() and len(limit) <= 6 else limit
    return convert(query, query_type)


def encode_cursor(values: list[str]) -> str:
    """The cursor clients see for a position given as a few strings."""
    raw = json.dumps(values, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, read: Callable[[Any], Position]) -> Position:
    """The position ``text`` encodes, as ``read`` makes it of the decoded array.

    ``read`` raises ValueError or TypeError for an array that is not one of its positions; any
    such text is a 400 problem: not a cursor this API handed out.
    """
    try:
        if len(text) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return read(json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise Problem(
            INVALID_CURSOR,
            "cursor: not a cursor this API handed out; start again without one",
            field="cursor",
        ) from exc
