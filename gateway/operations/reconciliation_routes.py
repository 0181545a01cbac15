"""Operator views (admin token): ``GET /admin/reconciliation``."""

from __future__ import annotations

from aiohttp import web

from gateway.http.auth import require_admin
from gateway.http.responses import json_response
from gateway.keys import SESSIONMAKER
from gateway.operations.reconciliation import latest_report, report_document

routes = web.RouteTableDef()


@routes.get("/admin/reconciliation")
async def reconciliation(request: web.Request) -> web.Response:
    """The latest stock reconciliation report with the drift it found; 404 before the first."""
    require_admin(request)
    async with request.app[SESSIONMAKER]() as session:
        report = await latest_report(session)
    return json_response(report_document(report))
