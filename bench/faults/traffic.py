"""Shoppers placing orders of every kind, retrying through outages the way a careful client does.

Every POST carries an Idempotency-Key and is repeated with the same key until the gateway
answers: an order the gateway committed before a crash is found again, never duplicated. An
order counts as accepted once a 202 came back for it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

KINDS = (
    "card_ok",
    "card_declined",
    "no_response",
    "redirect_approved",
    "customer_cancel",
    "cancel_after_payment",
)
RETRYABLE = {429, 500, 502, 503, 504}


class GaveUp(Exception):
    """The gateway did not answer usefully before the call's deadline."""


@dataclass
class Accepted:
    order_id: str
    kind: str
    token: str
    skus: dict[str, int]


@dataclass
class Traffic:
    gateway_url: str
    psp_url: str
    admin_token: str
    rng: random.Random
    accepted: list[Accepted] = field(default_factory=list)
    not_accepted: int = 0
    follow_up_failures: int = 0

    async def call(
        self,
        client: aiohttp.ClientSession,
        method: str,
        url: str,
        *,
        deadline: float,
        token: str | None = None,
        json: Any = None,
        headers: dict | None = None,
    ) -> tuple[int, Any]:
        """One request, repeated on connection errors and 5xx/429 until ``deadline``."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        delay = 0.2
        while True:
            try:
                async with client.request(
                    method, url, json=json, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    body = await response.json(content_type=None) if await response.read() else None
                    if response.status not in RETRYABLE:
                        return response.status, body
            except (TimeoutError, aiohttp.ClientError):
                pass
            if time.monotonic() + delay > deadline:
                raise GaveUp(f"{method} {url}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def customer(self, client: aiohttp.ClientSession) -> str:
        email = f"chaos-{uuid.uuid4().hex}@example.com"
        deadline = time.monotonic() + 60
        await self.call(
            client,
            "POST",
            f"{self.gateway_url}/accounts",
            deadline=deadline,
            json={"email": email, "name": "Chaos Shopper", "password": "chaos password"},
        )
        _, body = await self.call(
            client,
            "POST",
            f"{self.gateway_url}/auth/token",
            deadline=deadline,
            json={"email": email, "password": "chaos password"},
        )
        return body["access_token"]

    async def item(self, client: aiohttp.ClientSession, stock: int) -> str:
        sku = f"CHAOS-{uuid.uuid4().hex[:10].upper()}"
        deadline = time.monotonic() + 60
        await self.call(
            client,
            "POST",
            f"{self.gateway_url}/items",
            deadline=deadline,
            token=self.admin_token,
            json={"sku": sku, "name": f"Chaos item {sku}", "price_cents": 1000},
        )
        await self.call(
            client,
            "POST",
            f"{self.gateway_url}/items/{sku}/stock",
            deadline=deadline,
            token=self.admin_token,
            json={"quantity": stock},
        )
        return sku

    async def order(self, client: aiohttp.ClientSession, token: str, skus: list[str], kind: str) -> None:
        lines = {sku: self.rng.randint(1, 2) for sku in self.rng.sample(skus, self.rng.randint(1, 2))}
        payment = {
            "card_ok": {"method": "token", "token": "pm_card_ok"},
            "cancel_after_payment": {"method": "token", "token": "pm_card_ok"},
            "card_declined": {"method": "token", "token": "pm_card_declined"},
            "no_response": {"method": "token", "token": "pm_card_no_response"},
        }.get(kind, {"method": "redirect"})
        body = {"items": [{"sku": sku, "quantity": q} for sku, q in lines.items()], "payment": payment}
        try:
            status, answer = await self.call(
                client,
                "POST",
                f"{self.gateway_url}/orders",
                deadline=time.monotonic() + 90,
                token=token,
                json=body,
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
        except GaveUp:
            self.not_accepted += 1
            return
        if status != 202:
            self.not_accepted += 1
            return
        order = Accepted(answer["id"], kind, token, lines)
        self.accepted.append(order)
        try:
            await self.follow_up(client, order)
        except GaveUp:
            self.follow_up_failures += 1

    async def _order_state(self, client, order: Accepted, deadline: float) -> dict:
        _, body = await self.call(
            client, "GET", f"{self.gateway_url}/orders/{order.order_id}", deadline=deadline, token=order.token
        )
        return body

    async def _wait_for(self, client, order: Accepted, predicate, deadline: float) -> dict | None:
        while time.monotonic() < deadline:
            state = await self._order_state(client, order, deadline)
            if predicate(state):
                return state
            await asyncio.sleep(0.3)
        return None

    async def follow_up(self, client: aiohttp.ClientSession, order: Accepted) -> None:
        """What the customer does after ordering: pay at the provider, or cancel."""
        deadline = time.monotonic() + 60
        if order.kind == "redirect_approved":
            state = await self._wait_for(
                client,
                order,
                lambda s: (
                    s["payment"].get("checkout_url")
                    or (s["status"] != "AWAITING_PAYMENT" and s["status"] != "PENDING")
                ),
                deadline,
            )
            if state and state["payment"].get("checkout_url") and state["status"] == "AWAITING_PAYMENT":
                await self.call(
                    client, "POST", f"{state['payment']['checkout_url']}/approve", deadline=deadline
                )
        elif order.kind == "customer_cancel":
            await self.call(
                client,
                "POST",
                f"{self.gateway_url}/orders/{order.order_id}/cancel",
                deadline=deadline,
                token=order.token,
            )
        elif order.kind == "cancel_after_payment":
            placed = await self._wait_for(
                client,
                order,
                lambda s: s["status"] != "PENDING" and s["status"] != "AWAITING_PAYMENT",
                deadline,
            )
            if placed and placed["status"] == "PLACED":
                await self.call(
                    client,
                    "POST",
                    f"{self.gateway_url}/orders/{order.order_id}/cancel",
                    deadline=deadline,
                    token=order.token,
                )

    async def shopper(
        self, client: aiohttp.ClientSession, token: str, skus: list[str], until: float, pause: float
    ) -> None:
        """Place orders of random kinds until ``until``."""
        while time.monotonic() < until:
            await self.order(client, token, skus, self.rng.choice(KINDS))
            await asyncio.sleep(pause)
