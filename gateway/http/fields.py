"""Field types several bodies share, each declared once: what it accepts, how a refusal reads,
and how the OpenAPI document describes it.

Patterns are Python's and ECMA's at once: ``anchored`` ends them with ``(?!\\n)`` because
Python's ``$`` also matches before a final newline, which JSON Schema's does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from msgspec import Meta

from gateway.http.json_documents import ValidationError, check_depth
from models.identity import normalize_email


def anchored(pattern: str) -> str:
    """``pattern`` as a whole-value match for ``re.search`` and for JSON Schema alike."""
    return f"^(?:{pattern})$(?!\\n)"


#: Whitespace as Python's ``str.isspace`` has it; ``\s`` alone differs between Python and ECMA.
SPACE = r"\s\x1c-\x1f\x85"


def free_form(*, max_bytes: int, max_depth: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The check of a free-form JSON object: nested at most ``max_depth`` levels, ``max_bytes`` long."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        try:
            check_depth(value, max_depth)
        except ValidationError as error:
            raise ValueError(error.message) from None
        if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > max_bytes:
            raise ValueError(f"must be at most {max_bytes} bytes as JSON")
        return value

    return check


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. "http://[x]/": a bracketed host that is no IPv6 address
        scheme, host = None, None
    if scheme not in ("http", "https") or not host:
        raise ValueError("must be an http or https URL")
    return value


_EMAIL_MAX_LENGTH = 254
_EMAIL_SHAPE = f"[^@{SPACE}]+@[^@{SPACE}.]+(\\.[^@{SPACE}.]+)+"
_EMAIL = re.compile(_EMAIL_SHAPE)


def _canonical_email(value: str) -> str:
    canonical = normalize_email(value)
    if not _EMAIL.fullmatch(canonical):
        raise ValueError("must be an email address")
    # Lower-casing can lengthen a few letters (e.g. U+0130); the column holds the maximum.
    if len(canonical) > _EMAIL_MAX_LENGTH:
        raise ValueError(f"must be at most {_EMAIL_MAX_LENGTH} characters long")
    return canonical


#: A free-form postal address.
Address = Annotated[
    dict[str, Any],
    Meta(
        description="Free-form JSON object (street, city, ...): at most 2048 bytes as JSON, nested at most "
        "3 levels",
        examples=[{"line1": "1 Main St", "city": "Springfield", "postcode": "12345", "country": "US"}],
        extra={"check": free_form(max_bytes=2048, max_depth=3)},
    ),
]

#: A person's or an item's name.
Name = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=f"[^{SPACE}]",
        description="Not blank",
        extra={"pattern_error": "must not be blank"},
    ),
]

#: An absolute http(s) URL naming a host. The pattern only says "no whitespace"; the check says the rest.
HttpUrl = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=2048,
        pattern=anchored(f"[^{SPACE}]+"),
        description="An absolute http or https URL naming a host",
        extra={"pattern_error": "must be an http or https URL", "check": _http_url},
    ),
]

#: An email address as a client may type it; the check returns its canonical form.
Email = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=_EMAIL_MAX_LENGTH,
        pattern=anchored(f"[{SPACE}]*{_EMAIL_SHAPE}[{SPACE}]*"),
        description="Trimmed, lower-cased and put in Unicode NFC, then stored and compared exactly: "
        "`Zoë@` and `zoë@` are one account, `zoe@` and `zoë@` two",
        examples=["ada@example.com"],
        extra={"pattern_error": "must be an email address", "check": _canonical_email},
    ),
]

#: An ISO 4217 currency code.
Currency = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=3,
        pattern=anchored("[A-Z]{3}"),
        description="ISO 4217 code",
        examples=["USD"],
        extra={"pattern_error": "must be an ISO 4217 code like USD"},
    ),
]
