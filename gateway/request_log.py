"""One log line per request with its outcome, carrying the context the handlers bound.

Handlers bind ``order_id`` (and auth binds ``account_id``) with ``structlog.contextvars``; this
middleware wraps the whole request, so its closing line and every line logged meanwhile carry
them. A request id (the client's ``X-Request-ID`` when sane, else a fresh one) joins the lines
of one request and is echoed back.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from aiohttp import web

log = structlog.get_logger("gateway.request")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Keys handlers may bind during a request; cleared afterwards so none leaks into the next one.
_REQUEST_SCOPED = ("request_id", "order_id", "account_id", "event_id")
# Probes hit these every few seconds; a line each would bury the order trail.
_QUIET_PATHS = frozenset({"/healthz"})


@web.middleware
async def request_log_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Log method, path, status and duration of each request, with the bound context."""
    supplied = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = supplied if _SANE_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status: int | None = None
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        if request.path not in _QUIET_PATHS or (status or 500) >= 500:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            level = log.info if status is not None and status < 500 else log.warning
            level("http.request", method=request.method, path=request.path,
                  status=status if status is not None else "aborted", duration_ms=duration_ms)
        structlog.contextvars.unbind_contextvars(*_REQUEST_SCOPED)
