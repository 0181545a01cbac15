"""One log line per request with its outcome, carrying the context the handlers bound; and its
latency, into the ``orders_http_request_duration_seconds`` histogram.

Handlers bind ``order_id`` (and auth binds ``account_id``) with ``structlog.contextvars``; this
middleware wraps the whole request, so its closing line and every line logged meanwhile carry
them. A request id (the client's ``X-Request-ID`` when sane, else a fresh one) joins the lines
of one request and is echoed back. The request is timed once, for the line and the histogram.
"""

from __future__ import annotations

import os
import re
from time import perf_counter

import structlog
from aiohttp import web

from gateway.keys import METRICS

log = structlog.get_logger("gateway.request")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Keys handlers may bind during a request; cleared afterwards so none leaks into the next one.
_REQUEST_SCOPED = ("request_id", "order_id", "account_id", "event_id")
# Probes hit these every few seconds; a line each would bury the order trail.
_QUIET_PATHS = frozenset({"/healthz"})

_bind = structlog.contextvars.bind_contextvars
_unbind = structlog.contextvars.unbind_contextvars


def new_request_id() -> str:
    """A fresh request id: 32 random hex digits."""
    return os.urandom(16).hex()


@web.middleware
async def request_log_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Log method, path, status and duration of each request, with the bound context, and time it
    into the latency histogram."""
    supplied = request.headers.get(REQUEST_ID_HEADER)
    request_id = supplied if supplied and _SANE_REQUEST_ID.fullmatch(supplied) else new_request_id()
    _bind(request_id=request_id)
    started = perf_counter()
    status: int | None = None  # None: no response (an exception, or the client went away)
    metric_status = 500  # what the histogram counts a request without a response as
    try:
        response = await handler(request)
        status = metric_status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as error:  # only redirects and the like get past the problem middleware
        metric_status = error.status
        raise
    finally:
        elapsed = perf_counter() - started
        request.app[METRICS].observe_request(request.method, route_label(request), metric_status, elapsed)
        if status is None or status >= 500:
            log.warning(
                "http.request",
                method=request.method,
                path=request.path,
                status=status if status is not None else "aborted",
                duration_ms=round(elapsed * 1000, 1),
            )
        elif request.path not in _QUIET_PATHS:
            log.info(
                "http.request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round(elapsed * 1000, 1),
            )
        _unbind(*_REQUEST_SCOPED)


def route_label(request: web.Request) -> str:
    """The route's template (``/orders/{id}``), never the raw path: ids would explode the series."""
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "unmatched"
