"""JSON answers: every document the gateway sends (answers and problems) is encoded here.

Answers are declared as :class:`msgspec.Struct` types (which the API description's schemas are
generated from) and written by msgspec, straight from the Struct. Other values are written by
orjson, which writes the same JSON as the standard library for everything the gateway sends (compact,
and UTF-8 instead of ``\\u`` escapes, which parse to the same values), several times faster. The
few values orjson refuses (integers past 64 bits, which a free-form shipping address may hold,
keys that are not strings) are written by the standard library instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
from aiohttp import web

JSON_CONTENT_TYPE = "application/json"

_encode_struct = msgspec.json.Encoder().encode


def dumps(data: Any) -> bytes:
    """``data`` (a declared document, or plain JSON values) as a JSON document in UTF-8."""
    if isinstance(data, msgspec.Struct):
        return _encode_struct(data)
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
