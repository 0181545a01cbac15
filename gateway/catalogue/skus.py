"""SKUs: the shape every item's SKU has, in bodies and in paths."""

from __future__ import annotations

import re
from typing import Annotated

from aiohttp import web
from msgspec import Meta

from gateway.http.fields import anchored

SKU_PATTERN = r"[A-Za-z0-9._-]{1,64}"
SKU_SHAPE = re.compile(SKU_PATTERN)
#: A SKU in a request body.
Sku = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=anchored(SKU_PATTERN),
        description="Letters, digits, `.`, `_` or `-`; compared case-insensitively",
        extra={"pattern_error": "must be letters, digits, '.', '_' or '-'"},
    ),
]


def path_sku(request: web.Request) -> str | None:
    """The ``{sku}`` of the path, or None when it could never name an item."""
    sku = request.match_info["sku"]
    return sku if SKU_SHAPE.fullmatch(sku) else None
