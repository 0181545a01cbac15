"""Every failure the gateway answers is application/problem+json, never a page or a trace."""

from __future__ import annotations

import uuid

import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app


async def explode(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


@pytest_asyncio.fixture
async def client(settings):
    app = create_app(settings)
    app.router.add_get("/test-only/explode", explode)
    async with TestClient(TestServer(app)) as client:
        yield client


async def assert_problem(response, status: int) -> dict:
    assert response.status == status
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert problem["status"] == status
    return problem


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_unknown_route_and_wrong_method(client):
    await assert_problem(await client.get("/no/such/thing"), 404)
    problem = await assert_problem(response := await client.delete("/accounts"), 405)
    assert "POST" in response.headers["Allow"] and "DELETE" in problem["detail"]


async def test_body_larger_than_allowed_is_413(client, settings):
    body = b'{"email": "' + b"a" * settings.max_body_bytes + b'"}'
    response = await client.post("/accounts", data=body, headers={"Content-Type": "application/json"})
    await assert_problem(response, 413)


async def test_malformed_and_missing_json_are_400(client):
    for body in (b"{", b"", b"NaN", b'{"email": 1e999}', b'"\\ud800"', b"[" * 50_000, b"\xff\xfe"):
        response = await client.post("/accounts", data=body, headers={"Content-Type": "application/json"})
        problem = await assert_problem(response, 400)
        assert problem["type"].endswith("/malformed-json")


async def test_json_that_is_not_an_object_is_422(client):
    response = await client.post("/accounts", json=[1, 2, 3])
    assert (await assert_problem(response, 422))["field"] == "body"


async def test_unexpected_errors_are_a_generic_500(client):
    problem = await assert_problem(await client.get("/test-only/explode"), 500)
    assert "secret" not in problem["detail"] and "Traceback" not in problem["detail"]


async def test_requests_carry_an_id(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


async def test_odd_input_never_causes_a_500(client, settings):
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    odd_values = [
        None,
        True,
        0,
        -1,
        10**30,
        1.5,
        "",
        "\u0000",
        "x" * 5000,
        [],
        {},
        [None],
        {"a": {"b": {"c": {}}}},
    ]
    fields = [
        "email",
        "name",
        "password",
        "shipping_address",
        "sku",
        "price_cents",
        "currency",
        "upc",
        "picture_urls",
        "attributes",
        "quantity",
        "items",
        "payment",
    ]
    targets = [("/accounts", {}), ("/auth/token", {}), ("/items", admin), ("/items/SKU-1/stock", admin)]
    for path, headers in targets:
        for field in fields:
            for value in odd_values:
                response = await client.post(path, json={field: value}, headers=headers)
                assert response.status < 500, (path, field, value, await response.text())
    email = f"odd-{uuid.uuid4().hex}@example.com"
    assert (
        await client.post("/accounts", json={"email": email, "name": "Zoë 😀", "password": "long password"})
    ).status == 201
    token = await (
        await client.post("/auth/token", json={"email": email, "password": "long password"})
    ).json()
    customer = {"Authorization": f"Bearer {token['access_token']}", "Idempotency-Key": uuid.uuid4().hex}
    for field in ("items", "payment", "shipping_address"):
        for value in [
            *odd_values,
            [{"sku": "A", "quantity": 10**30}],
            [{"sku": "é", "quantity": 1}],
            {"method": None},
            {"method": "token", "token": None},
        ]:
            response = await client.post("/orders", json={field: value}, headers=customer)
            assert response.status < 500, (field, value, await response.text())
    for path in ("/items/%F0%9F%98%80", "/items/" + "x" * 300, "/orders/%00", "/orders/" + "é" * 40):
        response = await client.get(path, headers={"Authorization": "Bearer é"})
        assert response.status in (401, 404), path
