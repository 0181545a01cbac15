"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.http.problems import NOT_READY, Problem
from gateway.http.responses import json_response
from gateway.keys import METRICS, SESSIONMAKER, SETTINGS
from gateway.operations.readiness import REQUIRED, check_dependencies
from gateway.operations.schemas import Health, Readiness

routes = web.RouteTableDef()

_ALIVE = Health(status="ok")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Always ``{"status": "ok"}`` while the event loop answers (it checks no dependency, by design)."""
    return json_response(_ALIVE)


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when database and broker answer; 503 problem naming what is down otherwise."""
    checks = await check_dependencies(request.app)
    down = [name for name in REQUIRED if checks[name] != "ok"]
    if down:
        raise Problem(NOT_READY, f"not ready: {', '.join(down)} unavailable", checks=checks)
    return json_response(Readiness(status="ready", checks=checks))


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: request latency per route, orders by status, outbox and hold
    backlogs, dead letters per queue."""
    registry = request.app[METRICS]
    # A source that is down (an exception, returned and dropped) keeps its last known gauges;
    # the latency histograms are always served.
    await asyncio.gather(
        registry.refresh(request.app[SESSIONMAKER]),
        registry.refresh_dead_letters(request.app[SETTINGS].broker_url),
        return_exceptions=True,
    )
    response = web.Response(body=generate_latest(registry.registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
