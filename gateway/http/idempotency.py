"""The ``Idempotency-Key`` header that makes retrying an order, a checkout or a refund safe."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from gateway.http.problems import INVALID_IDEMPOTENCY_KEY, MISSING_IDEMPOTENCY_KEY, Problem

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def idempotency_key(request: web.Request, *, operation: str, per: str) -> str:
    """The request's key; a 400 problem when it is missing or unusable.

    ``operation`` (``"POST /orders"``) and ``per`` (``"order"``) only word the problem's detail.
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if not key:
        raise Problem(
            MISSING_IDEMPOTENCY_KEY,
            f"{operation} needs an {IDEMPOTENCY_HEADER} header (e.g. a UUID chosen by the client per {per})",
        )
    # Printable ASCII only: the key is compared byte for byte and echoed in logs.
    if len(key) > MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise Problem(
            INVALID_IDEMPOTENCY_KEY,
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
        )
    return key


def request_hash(body: Any) -> str:
    """SHA-256 of the body as canonical JSON: key order and spacing do not make it a new request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
