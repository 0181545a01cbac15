"""Reading JSON bodies and checking their shape, with errors that name the offending field.

A schema is built from small validator functions (``string``, ``integer``, ``obj``, ...). Each
takes ``(value, path)`` and returns the accepted value or raises :class:`ValidationError`, whose
``path`` reads like ``items[2].quantity``. :func:`validate` turns that into a 422 problem (or
another problem type, for callers such as the webhook that answer 400 on a bad shape).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from gateway.http.problems import INVALID_REQUEST, MALFORMED_JSON, Problem, ProblemType
from models.identity import normalize_email

Validator = Callable[[Any, str], Any]


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


def validate(schema: Validator, value: Any, kind: ProblemType = INVALID_REQUEST) -> Any:
    """Check ``value`` against ``schema``; a mismatch becomes a ``kind`` problem naming the field."""
    try:
        return schema(value, "")
    except ValidationError as error:
        raise Problem(kind, str(error), field=error.path) from None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# -- scalars ---------------------------------------------------------------------------------


def string(
    *,
    min_length: int = 1,
    max_length: int,
    pattern: str | None = None,
    not_blank: bool = False,
    what: str | None = None,
) -> Validator:
    """A string of ``min_length``..``max_length`` characters, optionally matching ``pattern``."""
    compiled = re.compile(pattern) if pattern else None

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise ValidationError(path, "must be a string")
        if not min_length <= len(value) <= max_length:
            raise ValidationError(path, f"must be {min_length} to {max_length} characters long")
        if not_blank and not value.strip():
            raise ValidationError(path, "must not be blank")
        if compiled is not None and not compiled.fullmatch(value):
            raise ValidationError(path, f"must be {what or 'of the form ' + pattern}")
        return value

    return check


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Validator:
    """A JSON integer (``true``/``false`` and ``1.0`` are refused) within the given bounds."""

    def check(value: Any, path: str) -> int:
        # bool is a subclass of int in Python; a client sending true almost certainly erred.
        if type(value) is not int:
            raise ValidationError(path, "must be an integer")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValidationError(path, f"must be an integer {_range(minimum, maximum)}")
        return value

    return check


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}"
    if minimum is not None:
        return f"of at least {minimum}"
    return f"of at most {maximum}"


def literal(*choices: str) -> Validator:
    """One of the given strings."""

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValidationError(path, f"must be one of {', '.join(repr(c) for c in choices)}")
        return value

    return check


def http_url(*, max_length: int = 2048) -> Validator:
    """An absolute ``http``/``https`` URL naming a host."""

    def check(value: Any, path: str) -> str:
        string(max_length=max_length)(value, path)
        try:
            parts = urlsplit(value)
            scheme, host = parts.scheme, parts.hostname
        except ValueError:  # e.g. "http://[x]/": a bracketed host that is no IPv6 address
            scheme, host = None, None
        if scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
            raise ValidationError(path, "must be an http or https URL")
        return value

    return check


def email(*, max_length: int = 254) -> Validator:
    """An email address (one ``@``, a dotted domain, no spaces), returned in its canonical form.

    The canonical form (:func:`models.identity.normalize_email`: trimmed, lower-cased, Unicode
    NFC) is what is stored and compared, so surrounding spaces are allowed and dropped.
    """
    shape = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")

    def check(value: Any, path: str) -> str:
        string(max_length=max_length)(value, path)
        canonical = normalize_email(value)
        if not shape.fullmatch(canonical):
            raise ValidationError(path, "must be an email address")
        # Lower-casing can lengthen a few letters (e.g. U+0130); the column holds max_length.
        if len(canonical) > max_length:
            raise ValidationError(path, f"must be at most {max_length} characters long")
        return canonical

    return check


# -- containers ------------------------------------------------------------------------------


def array(item: Validator, *, min_items: int = 0, max_items: int) -> Validator:
    """A list of ``min_items``..``max_items`` elements, each checked by ``item``."""

    def check(value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError(path, "must be an array")
        if not min_items <= len(value) <= max_items:
            raise ValidationError(path, f"must have {min_items} to {max_items} elements")
        return [item(element, f"{path}[{index}]") for index, element in enumerate(value)]

    return check


def obj(
    required: Mapping[str, Validator] | None = None,
    optional: Mapping[str, Validator] | None = None,
    *,
    extra: str = "forbid",
) -> Validator:
    """A JSON object with the ``required`` and ``optional`` members.

    An optional member sent as ``null`` is kept as ``None``; an absent one stays absent.
    ``extra="forbid"`` refuses unknown members (a misspelt field must not be silently dropped);
    ``extra="ignore"`` drops them (for payloads from outside systems that grow new fields).
    """
    required_members = tuple((required or {}).items())
    optional_members = tuple((optional or {}).items())
    known = frozenset(key for key, _ in required_members + optional_members)
    forbid = extra == "forbid"

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(path, "must be a JSON object")
        if forbid and not known.issuperset(value):
            for key in value:
                if key not in known:
                    raise ValidationError(_join(path, key), "is not a known field")
        result: dict[str, Any] = {}
        for key, validator in required_members:
            member = value.get(key)
            if member is None:
                raise ValidationError(_join(path, key), "is required")
            result[key] = validator(member, f"{path}.{key}" if path else key)
        for key, validator in optional_members:
            if key in value:
                member = value[key]
                result[key] = None if member is None else validator(member, f"{path}.{key}" if path else key)
        return result

    return check


def tagged(tag: str, variants: Mapping[str, Validator]) -> Validator:
    """An object whose ``tag`` member picks which of ``variants`` checks the whole object."""
    choose = literal(*variants)

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(path, "must be a JSON object")
        if value.get(tag) is None:
            raise ValidationError(_join(path, tag), "is required")
        return variants[choose(value[tag], _join(path, tag))](value, path)

    return check


def json_object(*, max_bytes: int, max_depth: int = 4) -> Validator:
    """A free-form JSON object (an address, attributes) bounded in size and nesting."""

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(path, "must be a JSON object")
        check_depth(value, max_depth, path)
        if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > max_bytes:
            raise ValidationError(path, f"must be at most {max_bytes} bytes as JSON")
        return value

    return check


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
