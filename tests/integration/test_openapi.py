"""``GET /openapi.json`` describes the whole API, and only it; ``GET /docs`` shows it with no outside network.

The walk compares the routes the app registers with the document's operations both ways, so a
route added without its description (or a description left behind by a removed route) fails
here, naming it. Real answers of a sample of operations are checked against their documented
status codes, media types and schemas, with the same OpenAPI 3.0 semantics clients use.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.http.auth import issue_token
from gateway.openapi.handlers import STATIC_PREFIX
from gateway.openapi.spec import build_spec

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def app_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route of ``app``, less HEAD and the docs' static files."""
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD" or isinstance(route.resource, web.StaticResource):
            continue
        found.add((route.method, route.resource.canonical))
    return found


def documented_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS
    }


def test_every_route_is_documented_and_every_documented_route_exists(settings):
    app = create_app(settings)
    routes, documented = app_operations(app), documented_operations(build_spec())

    undocumented = sorted(routes - documented)
    phantom = sorted(documented - routes)

    assert not undocumented and not phantom, (
        "the OpenAPI document (gateway/openapi/spec.py) and the app's routes disagree:\n"
        + "".join(f"  route with no description: {method} {path}\n" for method, path in undocumented)
        + "".join(f"  described, but no such route: {method} {path}\n" for method, path in phantom)
    )


# -- real answers against the document --------------------------------------------------------


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = spec["components"][kind][name]
    return node


def _template_for(spec: dict[str, Any], path: str) -> str:
    """The document's path template that ``path`` (a concrete URL path) matches; literal paths first."""
    if path in spec["paths"]:
        return path
    for template in spec["paths"]:
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            return template
    raise AssertionError(f"no documented path matches {path}")


async def conforms(spec: dict[str, Any], response, *, path: str | None = None) -> Any:
    """Check an aiohttp client response against the document; returns its parsed body."""
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    method = response.method.lower()
    path = path or response.url.path
    template = _template_for(spec, path)
    operation = spec["paths"][template].get(method)
    assert operation is not None, f"{method.upper()} {template} is not documented"
    documented = operation["responses"].get(str(response.status))
    assert documented is not None, (
        f"{method.upper()} {template} answered {response.status}, which it does not document: "
        f"{await response.text()}"
    )
    documented = _resolve(spec, documented)
    media_type = response.content_type
    assert media_type in documented.get("content", {}), (
        f"{method.upper()} {template} {response.status} answered {media_type}, documented: "
        f"{list(documented.get('content', {}))}"
    )
    for header, definition in documented.get("headers", {}).items():
        if definition.get("required"):
            assert header in response.headers, f"{method.upper()} {template} {response.status} lacks {header}"
    if not media_type.endswith("json"):
        return await response.text()
    body = await response.json(content_type=None)
    schema = {**documented["content"][media_type]["schema"], "components": spec["components"]}
    errors = sorted(OAS30Validator(schema, format_checker=oas30_format_checker).iter_errors(body), key=str)
    assert not errors, (
        f"{method.upper()} {template} {response.status} does not fit its schema:\n"
        + "\n".join(f"  {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    )
    return body


@pytest.fixture
def spec():
    return build_spec()


async def test_served_document_is_the_built_one_and_the_docs_page_works_offline(client, spec):
    served = await client.get("/openapi.json")
    assert served.status == 200
    assert served.content_type == "application/json"
    assert await served.json() == spec

    page = await client.get("/docs")
    assert page.status == 200
    assert page.content_type == "text/html"
    text = await page.text()
    assert "/openapi.json" in text
    # Everything the page loads comes from this server: no outside network needed.
    assert not re.search(r"""(src|href)=["']https?://""", text)
    for asset in re.findall(r"""(?:src|href)=["']([^"']+)["']""", text):
        loaded = await client.get(asset)
        assert loaded.status == 200, asset
    if STATIC_PREFIX in text:
        bundle = await client.get(f"{STATIC_PREFIX}/swagger-ui-bundle.js")
        assert bundle.status == 200
        assert "javascript" in bundle.content_type


async def test_answers_fit_the_document(client, settings, spec, admin):
    assert (await conforms(spec, await client.get("/healthz"))) == {"status": "ok"}

    # accounts: created (201 with Location), refused (422 naming the field), conflict (409)
    email = f"openapi-{uuid.uuid4().hex[:12]}@example.com"
    account = await conforms(
        spec,
        await client.post(
            "/accounts",
            json={
                "email": email,
                "name": "Spec Reader",
                "password": "long enough password",
                "shipping_address": {"line1": "1 Main St", "city": "Springfield"},
            },
        ),
    )
    refused = await conforms(
        spec,
        await client.post(
            "/accounts",
            json={"email": "not-an-email", "name": "Spec Reader", "password": "long enough password"},
        ),
    )
    assert refused["status"] == 422 and refused["field"] == "email"
    unknown = await conforms(
        spec,
        await client.post(
            "/accounts",
            json={"email": email, "name": "x", "password": "long enough password", "nickname": "x"},
        ),
    )
    assert unknown["field"] == "nickname"
    await conforms(
        spec,
        await client.post(
            "/accounts", json={"email": email.upper(), "name": "Again", "password": "long enough password"}
        ),
    )
    await conforms(spec, await client.post("/accounts", data=b"{not json"))

    # sign-in: a wrong password is a documented 401 (or 429 once the rate limit is reached)
    await conforms(
        spec, await client.post("/auth/token", json={"email": email, "password": "wrong password"})
    )
    token = issue_token(settings, account["id"]).access_token
    customer = {"Authorization": f"Bearer {token}"}
    await conforms(spec, await client.get("/accounts/me", headers=customer))
    await conforms(spec, await client.get("/accounts/me"))
    await conforms(spec, await client.get("/accounts/me", headers={"Authorization": "Bearer nonsense"}))
    await conforms(spec, await client.patch("/accounts/me", headers=customer, json={"billing_address": None}))

    # catalogue
    sku = f"OAS-{uuid.uuid4().hex[:10]}"
    await conforms(
        spec,
        await client.post(
            "/items",
            headers=admin,
            json={
                "sku": sku,
                "name": "Spec mug",
                "price_cents": 1250,
                "picture_urls": ["https://img.example/m.png"],
            },
        ),
    )
    await conforms(
        spec, await client.post("/items", headers=customer, json={"sku": sku, "name": "x", "price_cents": 1})
    )
    # A bracketed host that is no IPv6 address once made the URL check crash (500): found by fuzzing.
    bad_url = await conforms(
        spec,
        await client.post(
            "/items",
            headers=admin,
            json={"sku": f"{sku}-2", "name": "x", "price_cents": 1, "picture_urls": ["http://[.C]/x"]},
        ),
    )
    assert bad_url["field"] == "picture_urls[0]"
    await conforms(spec, await client.post(f"/items/{sku}/stock", headers=admin, json={"quantity": 5}))
    await conforms(spec, await client.get(f"/items/{sku}"))
    await conforms(spec, await client.get("/items/no-such-sku-anywhere"))
    await conforms(spec, await client.get("/items", params={"q": sku, "limit": "5"}))
    await conforms(spec, await client.get("/items", params={"limit": "0"}))
    await conforms(spec, await client.get("/items", params={"cursor": "garbage"}))
    await conforms(spec, await client.get(f"/items/{sku}/receipts", headers=admin))

    # orders: taken (202 PENDING), listed, read; a missing key is a 400
    order = await conforms(
        spec,
        await client.post(
            "/orders",
            headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
            json={"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}},
        ),
    )
    assert order["status"] == "PENDING"
    missing_key = await conforms(
        spec, await client.post("/orders", headers=customer, json={"items": [{"sku": sku, "quantity": 1}]})
    )
    assert missing_key["status"] == 400
    await conforms(spec, await client.get("/orders", headers=customer, params={"limit": "1"}))
    await conforms(spec, await client.get("/orders", headers=customer, params={"status": "LOST"}))
    await conforms(spec, await client.get(f"/orders/{order['id']}", headers=customer))
    await conforms(spec, await client.get(f"/orders/{order['id']}", headers=admin))
    await conforms(spec, await client.get(f"/orders/{uuid.uuid4().hex}", headers=customer))
    await conforms(spec, await client.post(f"/orders/{order['id']}/deliver", headers=admin))
    if order.get("payment"):
        await conforms(spec, await client.get(f"/payments/{order['payment']['id']}", headers=customer))
    await conforms(
        spec,
        await client.post(
            f"/orders/{order['id']}/refund", headers={**admin, "Idempotency-Key": uuid.uuid4().hex}
        ),
    )
    await conforms(spec, await client.post(f"/orders/{order['id']}/cancel", headers=customer))

    # cart and wishlist
    await conforms(spec, await client.put(f"/cart/items/{sku}", headers=customer, json={"quantity": 2}))
    await conforms(spec, await client.get("/cart", headers=customer))
    await conforms(spec, await client.get("/cart", headers=admin))
    await conforms(spec, await client.put(f"/wishlist/{sku}", headers=customer))
    await conforms(spec, await client.get("/wishlist", headers=customer))
    await conforms(spec, await client.delete(f"/wishlist/{sku}", headers=customer))
    await conforms(
        spec,
        await client.post(
            "/cart/checkout",
            json={"payment": {"method": "redirect"}},
            headers={**customer, "Idempotency-Key": uuid.uuid4().hex},
        ),
    )
    await conforms(spec, await client.delete(f"/cart/items/{sku}", headers=customer))

    # operations
    await conforms(spec, await client.post("/payments/webhook", json={"id": "evt_1"}))
    await conforms(spec, await client.get("/readyz"))
    await conforms(spec, await client.get("/metrics"))
    await conforms(spec, await client.get("/admin/reconciliation", headers=admin))
