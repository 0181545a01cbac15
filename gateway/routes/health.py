"""``GET /healthz``: the process is alive and serving (it checks no dependency, by design)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Always ``{"status": "ok"}`` while the event loop answers."""
    return web.json_response({"status": "ok"})
