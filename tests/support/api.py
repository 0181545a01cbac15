"""A small client of the gateway's HTTP API, as a shop's front end would use it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.support.polling import eventually


class Api:
    def __init__(self, client: aiohttp.ClientSession, base_url: str, admin_token: str):
        self.client, self.base_url, self.admin_token = client, base_url, admin_token

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.client.request(
            method, self.base_url + path, json=json, data=data, headers=headers
        ) as response:
            body = await response.json(content_type=None) if await response.read() else None
            return response.status, body, response

    async def customer(self) -> str:
        """A new account's bearer token."""
        email = f"{uuid.uuid4().hex}@example.com"
        status, _, _ = await self.call(
            "POST",
            "/accounts",
            json={"email": email, "name": "E2E Customer", "password": "correct horse battery"},
        )
        assert status == 201
        status, body, _ = await self.call(
            "POST", "/auth/token", json={"email": email, "password": "correct horse battery"}
        )
        assert status == 200
        return body["access_token"]

    async def item(self, *, stock: int, price_cents: int = 2500) -> str:
        """A new catalogue item with ``stock`` units received."""
        sku = f"E2E-{uuid.uuid4().hex[:10].upper()}"
        status, _, _ = await self.call(
            "POST",
            "/items",
            token=self.admin_token,
            json={"sku": sku, "name": f"E2E item {sku}", "price_cents": price_cents},
        )
        assert status == 201
        if stock:
            status, _, _ = await self.call(
                "POST", f"/items/{sku}/stock", token=self.admin_token, json={"quantity": stock}
            )
            assert status == 201
        return sku

    async def available(self, sku: str) -> int:
        status, body, _ = await self.call("GET", f"/items/{sku}")
        assert status == 200
        return body["available"]

    async def order(
        self, token: str, lines: dict[str, int], *, payment: dict | None = None, key: str | None = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        body = {
            "items": [{"sku": sku, "quantity": q} for sku, q in lines.items()],
            "payment": payment or {"method": "token", "token": "pm_card_ok"},
        }
        return await self.call(
            "POST", "/orders", token=token, json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex}
        )

    async def final_order(self, token: str, order_id: str, statuses: set[str], timeout: float = 30.0) -> dict:
        """Poll ``GET /orders/{id}`` until its status is one of ``statuses``."""
        return await self.order_when(
            token,
            order_id,
            lambda order: order["status"] in statuses,
            timeout=timeout,
            what=f"order {order_id} in {statuses}",
        )

    async def checkout_url(self, token: str, order_id: str) -> str:
        """Poll the order until its current payment shows the provider's checkout URL."""

        async def probe():
            _, order, _ = await self.call("GET", f"/orders/{order_id}", token=token)
            return order["payment"].get("checkout_url")

        return await eventually(probe, what=f"checkout_url on order {order_id}")

    async def order_when(
        self,
        token: str,
        order_id: str,
        done: Callable[[dict], bool],
        *,
        timeout: float = 30.0,
        what: str = "",
    ) -> dict:
        """Poll ``GET /orders/{id}`` until ``done(order)`` holds; the order then."""

        async def probe():
            status, body, _ = await self.call("GET", f"/orders/{order_id}", token=token)
            return body if status == 200 and done(body) else None

        return await eventually(probe, timeout=timeout, what=what or f"order {order_id} done")
