"""Request bodies and query strings read into their declared :mod:`msgspec` types.

Each body has one declaration (a ``msgspec.Struct`` in its feature's ``schemas`` module): msgspec
checks it while decoding, and the OpenAPI document's schema is generated from it. What JSON
Schema cannot say (an email's canonical form, a card number where a token belongs, the size of
a free-form object) is a ``check`` in the field's ``Meta(extra=...)``: :func:`run_checks` applies
it after decoding, so the declaration stays the one place that knows the field.

Every refusal is a problem naming the field, worded as the field's constraints read
(:mod:`gateway.http.body_errors`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from gateway.http.body_errors import refusal
from gateway.http.field_checks import FieldError, apply_checks
from gateway.http.json_documents import parse_json
from gateway.http.problems import INVALID_REQUEST, MALFORMED_JSON, Problem, ProblemType

T = TypeVar("T")

# A document with this many brackets may be nested deeper than the standard library reads; it
# is read by parse_json first, so it gets the same 400 as any other too-deep document.
_MANY_BRACKETS = 500


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(body_type: Any) -> msgspec.json.Decoder[Any]:
    """One decoder per body type: building it is the costly part."""
    decoder = _DECODERS.get(body_type)
    if decoder is None:
        decoder = _DECODERS[body_type] = msgspec.json.Decoder(body_type)
    return decoder


async def read_body(request: web.Request, body_type: type[T], *, kind: ProblemType = INVALID_REQUEST) -> T:
    """The request's body as ``body_type``; 400 when absent or not JSON, a ``kind`` problem when
    it does not fit, 413 when larger than allowed."""
    raw = await request.read()
    if not raw.strip():
        raise Problem(MALFORMED_JSON, "a JSON body is required")
    return decode(raw, body_type, kind=kind)


def decode(raw: bytes, body_type: type[T], *, kind: ProblemType = INVALID_REQUEST) -> T:
    """``raw`` decoded and checked as ``body_type`` (see :func:`read_body`)."""
    if raw.count(b"[") + raw.count(b"{") >= _MANY_BRACKETS:
        return convert(parse_json(raw), body_type, kind=kind)
    try:
        body: T = _decoder(body_type).decode(raw)
    except msgspec.DecodeError:
        # Not JSON to msgspec: the standard library's reading gives the answer (and its message).
        return convert(parse_json(raw), body_type, kind=kind)
    except msgspec.ValidationError as error:
        # A number too large for a float is malformed JSON, not a field of the wrong kind.
        parse_json(raw)
        raise refusal(error, body_type, kind) from None
    return run_checks(body, body_type, kind=kind)


def convert(value: Any, body_type: type[T], *, kind: ProblemType = INVALID_REQUEST) -> T:
    """An already parsed JSON value (or query string) checked as ``body_type``."""
    try:
        body = msgspec.convert(value, body_type)
    except msgspec.ValidationError as error:
        raise refusal(error, body_type, kind) from None
    return run_checks(body, body_type, kind=kind)


def run_checks(body: T, body_type: type[T], *, kind: ProblemType = INVALID_REQUEST) -> T:
    """Apply the fields' own checks (``Meta(extra={"check": ...})``) to a decoded ``body``."""
    try:
        apply_checks(body, body_type)
    except FieldError as error:
        field = error.path or "body"
        raise Problem(kind, f"{field}: {error.message}", field=field) from None
    return body
