"""The request middleware: one line per request, its latency in the histogram, a request id echoed."""

from __future__ import annotations

import re

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from gateway.http import request_log
from gateway.http.problems import Problem, problem_middleware
from gateway.http.request_log import request_log_middleware
from gateway.keys import METRICS
from gateway.operations.metrics import GatewayMetrics


class Lines:
    """Stands in for the module's logger: records (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields) -> None:
        self.lines.append(("warning", event, fields))


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def refuse(request: web.Request) -> web.Response:
    raise Problem(422, "no")


async def explode(request: web.Request) -> web.Response:
    raise RuntimeError("boom")


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ok/1")


@pytest_asyncio.fixture
async def served(monkeypatch):
    lines = Lines()
    monkeypatch.setattr(request_log, "log", lines)
    app = web.Application(middlewares=[request_log_middleware, problem_middleware])
    app[METRICS] = GatewayMetrics()
    app.router.add_get("/ok/{id}", ok)
    app.router.add_get("/healthz", ok)
    app.router.add_post("/refuse", refuse)
    app.router.add_get("/explode", explode)
    app.router.add_get("/moved", moved)
    async with TestClient(TestServer(app)) as client:
        yield client, lines, app[METRICS]


async def test_one_line_and_one_observation_per_request(served):
    client, lines, metrics = served
    for path in ("/ok/1", "/ok/2"):
        assert (await client.get(path)).status == 200
    assert (await client.post("/refuse")).status == 422
    assert (await client.get("/explode")).status == 500
    assert (await client.get("/moved", allow_redirects=False)).status == 302
    assert (await client.get("/nowhere")).status == 404
    assert (await client.get("/healthz")).status == 200  # probes are counted, not logged

    assert [
        (level, event, fields["method"], fields["path"], fields["status"])
        for level, event, fields in lines.lines
    ] == [
        ("info", "http.request", "GET", "/ok/1", 200),
        ("info", "http.request", "GET", "/ok/2", 200),
        ("info", "http.request", "POST", "/refuse", 422),
        ("warning", "http.request", "GET", "/explode", 500),
        ("warning", "http.request", "GET", "/moved", "aborted"),
        ("info", "http.request", "GET", "/nowhere", 404),
    ]
    assert all(isinstance(fields["duration_ms"], float) for _, _, fields in lines.lines)
    text = generate_latest(metrics.registry).decode()
    for labels, count in [
        ('method="GET",route="/ok/{id}",status="200"', 2),
        ('method="POST",route="/refuse",status="422"', 1),
        ('method="GET",route="/explode",status="500"', 1),
        ('method="GET",route="/moved",status="302"', 1),
        ('method="GET",route="unmatched",status="404"', 1),
        ('method="GET",route="/healthz",status="200"', 1),
    ]:
        assert f"orders_http_request_duration_seconds_count{{{labels}}} {count:.1f}" in text


async def test_a_request_id_is_echoed_or_made(served):
    client, _, _ = served
    assert (await client.get("/ok/1", headers={"X-Request-ID": "abc-123"})).headers[
        "X-Request-ID"
    ] == "abc-123"
    for supplied in ({}, {"X-Request-ID": ""}, {"X-Request-ID": "not sane!"}):
        made = (await client.get("/ok/1", headers=supplied)).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
