"""JSON answers: every document the gateway sends (answers and problems) is encoded here, by orjson.

orjson writes the same JSON as the standard library for everything the gateway sends (compact,
and UTF-8 instead of ``\\u`` escapes, which parse to the same values), several times faster. The
few values orjson refuses (integers past 64 bits, which a free-form shipping address may hold,
keys that are not strings) are written by the standard library instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

JSON_CONTENT_TYPE = "application/json"


def dumps(data: Any) -> bytes:
    """``data`` as a JSON document in UTF-8."""
    try:
        return orjson.dumps(data)
    except TypeError:  # orjson.JSONEncodeError: what only the standard library writes (or nobody does)
        return json.dumps(data).encode("utf-8")


def json_response(
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = JSON_CONTENT_TYPE,
) -> web.Response:
    """A response whose body is ``data`` as JSON (``web.json_response``, with orjson)."""
    return web.Response(
        body=dumps(data), status=status, headers=headers, content_type=content_type, charset="utf-8"
    )
