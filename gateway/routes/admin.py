"""Operator views (admin token): ``GET /admin/reconciliation``."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import require_admin
from gateway.keys import SESSIONMAKER
from gateway.reconciliation import latest_report, report_json
from gateway.responses import json_response

routes = web.RouteTableDef()


@routes.get("/admin/reconciliation")
async def reconciliation(request: web.Request) -> web.Response:
    """The latest stock reconciliation report with the drift it found; 404 before the first."""
    require_admin(request)
    async with request.app[SESSIONMAKER]() as session:
        report = await latest_report(session)
    return json_response(report_json(report))
