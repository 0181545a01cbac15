"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.keys import METRICS, SESSIONMAKER
from gateway.problems import NOT_READY, Problem
from gateway.readiness import REQUIRED, check_dependencies

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Always ``{"status": "ok"}`` while the event loop answers (it checks no dependency, by design)."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when database and broker answer; 503 problem naming what is down otherwise."""
    checks = await check_dependencies(request.app)
    down = [name for name in REQUIRED if checks[name] != "ok"]
    if down:
        raise Problem(NOT_READY, f"not ready: {', '.join(down)} unavailable", checks=checks)
    return web.json_response({"status": "ready", "checks": checks})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: request latency per route, orders by status, outbox and hold backlogs."""
    registry = request.app[METRICS]
    try:
        await registry.refresh(request.app[SESSIONMAKER])
    except Exception:
        pass  # the database is down: serve the last known gauges with the latency histograms
    response = web.Response(body=generate_latest(registry.registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
