"""Reading JSON documents strictly, and bounding how deeply they nest.

Bodies are checked against their declared types by :mod:`gateway.http.bodies`; this module gives
the 400 verdict (and its message) for what is not JSON at all, and the nesting limit that free-form
objects and stored webhook payloads are held to.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from gateway.http.problems import MALFORMED_JSON, Problem


class ValidationError(ValueError):
    """A value does not fit its schema; ``path`` names where."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path or "body"
        self.message = message
        super().__init__(f"{self.path}: {message}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


# orjson refuses everything the standard library's strict reading below refuses (NaN, Infinity,
# numbers too large for a float, invalid UTF-8, lone surrogates, control characters in strings),
# but reads an integer of more than 64 bits as a float and nests up to 1024 levels. A body with
# 19 digits in a row, or with many brackets, is read by the standard library, as are those orjson
# refuses, so each one gets the same answer and error message as before.
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{19}")
_FEW_BRACKETS = 500


def parse_json(raw: bytes) -> Any:
    """Decode a JSON document strictly (no NaN/Infinity, valid UTF-8 without lone surrogates).

    Raises a 400 :class:`Problem` when ``raw`` is not such a document.
    """
    if raw.count(b"[") + raw.count(b"{") < _FEW_BRACKETS and _LONG_DIGIT_RUN.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # read again below, for the standard library's verdict and message
    return _parse_json_strictly(raw)


def _parse_json_strictly(raw: bytes) -> Any:
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
        # "\ud800" is valid JSON but no database column or UTF-8 encoder can hold it.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        raise Problem(MALFORMED_JSON, "the body is not valid UTF-8 text") from None
    except ValueError as exc:
        raise Problem(MALFORMED_JSON, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Problem(MALFORMED_JSON, "the body is nested too deeply") from None
    return value


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; 400 when absent or malformed, 413 when larger than allowed."""
    raw = await request.read()
    if not raw.strip():
        raise Problem(MALFORMED_JSON, "a JSON body is required")
    return parse_json(raw)


#: Up to this limit the depth is checked by recursion, which goes no deeper than the limit.
_RECURSIVE_DEPTH_CHECK = 32


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (input depth is untrusted, so recursion
    only goes as deep as a small ``limit``; above that the walk is iterative)."""
    if limit <= _RECURSIVE_DEPTH_CHECK:
        return _nests_beyond(value, limit)
    stack = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        children = (
            current.values() if isinstance(current, dict) else current if isinstance(current, list) else None
        )
        if children is None:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _nests_beyond(value: Any, limit: int) -> bool:
    """:func:`_deeper_than` by recursion: a container with ``limit`` levels left is one too many."""
    children: Iterable[Any]
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    if limit <= 0:
        return True
    return any(isinstance(child, (dict, list)) and _nests_beyond(child, limit - 1) for child in children)


def check_depth(value: Any, limit: int, path: str = "") -> None:
    """Refuse a document nested deeper than ``limit`` (the database's JSON type has a limit too)."""
    if _deeper_than(value, limit):
        raise ValidationError(path, f"must not nest deeper than {limit} levels")
