"""Operations endpoints: readiness names what is down; metrics in Prometheus format."""

from __future__ import annotations

import dataclasses

from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from tests.support.gateway_calls import customer, place


async def test_ready_when_database_broker_and_redis_answer(client):
    response = await client.get("/readyz")

    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "redis": "ok"},
    }


async def test_not_ready_names_the_broker_that_is_down(settings):
    broken = dataclasses.replace(
        settings, broker_url="amqp://guest:guest@127.0.0.1:1/%2F", redis_url="redis://127.0.0.1:1/0"
    )
    async with TestClient(TestServer(create_app(broken))) as client:
        response = await client.get("/readyz")
        problem = await response.json()

    assert response.status == 503 and response.content_type == "application/problem+json"
    assert "broker" in problem["detail"] and "database" not in problem["detail"]
    assert problem["checks"]["database"] == "ok"
    assert problem["checks"]["broker"].startswith("down") and problem["checks"]["redis"].startswith("down")


async def test_redis_down_alone_keeps_the_gateway_ready(settings):
    without_redis = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    async with TestClient(TestServer(create_app(without_redis))) as client:
        response = await client.get("/readyz")
        body = await response.json()

    assert response.status == 200 and body["checks"]["redis"].startswith("down")


async def test_metrics_show_latency_per_route_and_the_backlogs(client, admin):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    assert (await client.get(f"/orders/{order_id}", headers=auth)).status == 200

    response = await client.get("/metrics")
    text = await response.text()

    assert response.status == 200 and response.content_type == "text/plain"
    assert (
        'orders_http_request_duration_seconds_count{method="GET",route="/orders/{order_id}",status="200"} 1.0'
        in text
    )
    assert order_id not in text  # routes are labelled by template, never by id
    assert 'orders_by_status{status="PENDING"}' in text
    assert "orders_outbox_unsent " in text and "orders_holds_pending_units " in text
