"""Shoppers placing orders of every kind, retrying through outages the way a careful client does.

Every POST carries an Idempotency-Key and is repeated with the same key until the gateway
answers: an order the gateway committed before a crash is found again, never duplicated. An
order counts as accepted once a 202 came back for it.

Besides paying, declining and cancelling, some orders go on after the sale
(:mod:`bench.faults.after_sale`: partial refunds, returns) or change before it
(:mod:`bench.faults.changes`: a new shipping address, another payment method). Those orders
take their items from SKUs of their own with deep stock, so they are placed and get that far
while the others still run out of stock. Every answer to such a request is tallied; an answer
the contract does not allow for it is a violation.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.faults import after_sale, changes

PAYING = {"method": "token", "token": "pm_card_ok"}
REDIRECT = {"method": "redirect"}
NO_RESPONSE = {"method": "token", "token": "pm_card_no_response"}

#: Kinds of order, each with how it is paid and whether it uses the deep-stock SKUs.
BASIC_KINDS = {
    "card_ok": PAYING,
    "card_declined": {"method": "token", "token": "pm_card_declined"},
    "no_response": NO_RESPONSE,
    "redirect_approved": REDIRECT,
    "customer_cancel": REDIRECT,
    "cancel_after_payment": PAYING,
}
AFTER_SALE_KINDS = ("partial_refund", "return", "address_change", "payment_change")
KINDS = (*BASIC_KINDS, *AFTER_SALE_KINDS)
RETRYABLE = {429, 500, 502, 503, 504}
#: A route the gateway does not have (yet) answers these; the kind is then skipped, with a note.
NO_SUCH_ENDPOINT = {404, 405}
FOLLOW_UP_SECONDS = 60


class GaveUp(Exception):
    """The gateway did not answer usefully before the call's deadline."""


@dataclass
class Accepted:
    order_id: str
    kind: str
    token: str
    skus: dict[str, int]
    total_cents: int = 0
    #: The payment attempt the order was accepted with.
    payment_id: str | None = None
    #: Refund requests of the order answered 202, each under its own key (None: not all answered).
    refunds_accepted: int | None = None


#: The gateway the running shopper talks to; its follow-ups (tasks it starts) inherit it.
_GATEWAY: contextvars.ContextVar[str] = contextvars.ContextVar("gateway")


@dataclass
class Traffic:
    #: The gateway of everything not done by a shopper given one of its own.
    home_gateway: str
    psp_url: str
    admin_token: str
    rng: random.Random
    accepted: list[Accepted] = field(default_factory=list)
    not_accepted: int = 0
    follow_up_failures: int = 0
    #: How often each follow-up request got each answer, e.g. ``("refund", "422")``.
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Answers the contract does not allow for the request (violations), e.g. a 500 for a refund.
    unexpected: list[str] = field(default_factory=list)
    #: Endpoints the gateway does not have: their kinds are skipped.
    missing: set[str] = field(default_factory=set)
    after_sale_skus: list[str] = field(default_factory=list)
    #: Follow-ups of after-sale kinds, running while their shopper goes on ordering.
    _background: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def gateway_url(self) -> str:
        """The gateway of the shopper running now (see :meth:`shopper`), else the home gateway."""
        return _GATEWAY.get(self.home_gateway)

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

    def answered(self, what: str, status: int, body: Any, allowed: dict[int, str | None]) -> bool:
        """Tally ``status`` for request ``what``; True when the contract allows it.

        ``allowed`` maps each allowed status to the problem type it must carry (its slug; None:
        any body). Anything else is recorded as unexpected.
        """
        self.tally[(what, str(status))] += 1
        if status in allowed:
            slug = allowed[status]
            if slug is None or (isinstance(body, dict) and str(body.get("type", "")).endswith(f"/{slug}")):
                return True
        self.unexpected.append(f"{what}: {status} {_short(body)}")
        return False

    def endpoint_missing(self, endpoint: str, status: int) -> bool:
        """True (and a note, once) when ``status`` says the gateway has no route for ``endpoint``."""
        if status not in NO_SUCH_ENDPOINT:
            return False
        if endpoint not in self.missing:
            self.missing.add(endpoint)
            print(f"  note: the gateway answers {status} to {endpoint}: that kind is skipped", flush=True)
        return True

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

    def _payment(self, kind: str) -> dict[str, Any]:
        if kind in BASIC_KINDS:
            return BASIC_KINDS[kind]
        if kind == "payment_change":
            # A payment the customer then gives up on: one waiting for them at the provider's
            # page, or a card that never answers.
            return self.rng.choice([REDIRECT, NO_RESPONSE])
        if kind == "address_change":
            # Paid at once, or on the provider's page later (the address changes before either).
            return self.rng.choice([PAYING, REDIRECT])
        return PAYING

    async def order(self, client: aiohttp.ClientSession, token: str, skus: list[str], kind: str) -> None:
        source = self.after_sale_skus if kind in AFTER_SALE_KINDS and self.after_sale_skus else skus
        lines = {sku: self.rng.randint(1, 2) for sku in self.rng.sample(source, self.rng.randint(1, 2))}
        body = {
            "items": [{"sku": sku, "quantity": q} for sku, q in lines.items()],
            "payment": self._payment(kind),
        }
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
        payment = answer.get("payment") or {}
        order = Accepted(answer["id"], kind, token, lines, answer.get("total_cents", 0), payment.get("id"))
        self.accepted.append(order)
        if kind in AFTER_SALE_KINDS:
            # These go on for several requests (and through any outage): the shopper does not
            # wait for them, so the run sends as many orders of the other kinds as it did before.
            task = asyncio.create_task(self._follow_up(client, order))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            await self._follow_up(client, order)

    async def _follow_up(self, client: aiohttp.ClientSession, order: Accepted) -> None:
        try:
            await self.follow_up(client, order)
        except GaveUp:
            self.follow_up_failures += 1
        except (KeyError, TypeError, aiohttp.ContentTypeError) as exc:
            # An answer not shaped as the contract says (a missing member, no JSON at all).
            self.unexpected.append(f"{order.kind} follow-up of order {order.order_id}: {exc!r}")

    async def finish(self) -> None:
        """Wait for the follow-ups still running (each ends by its deadline)."""
        while self._background:
            await asyncio.gather(*list(self._background))

    async def order_state(self, client: aiohttp.ClientSession, order: Accepted, deadline: float) -> dict:
        """The order as its customer sees it now."""
        _, body = await self.call(
            client, "GET", f"{self.gateway_url}/orders/{order.order_id}", deadline=deadline, token=order.token
        )
        return body

    async def wait_for(
        self,
        client: aiohttp.ClientSession,
        order: Accepted,
        predicate: Callable[[dict], Any],
        deadline: float,
    ) -> dict | None:
        """Poll the order until ``predicate`` holds for it; None if it did not before ``deadline``."""
        while time.monotonic() < deadline:
            state = await self.order_state(client, order, deadline)
            if predicate(state):
                return state
            await asyncio.sleep(0.3)
        return None

    async def wait_until_paid(
        self, client: aiohttp.ClientSession, order: Accepted, deadline: float
    ) -> dict | None:
        """The order once it left the unpaid states; None if it never did before ``deadline``."""
        return await self.wait_for(
            client, order, lambda s: s["status"] not in ("PENDING", "AWAITING_PAYMENT"), deadline
        )

    async def follow_up(self, client: aiohttp.ClientSession, order: Accepted) -> None:
        """What the customer (and the shop) do after ordering."""
        deadline = time.monotonic() + FOLLOW_UP_SECONDS
        handler = FOLLOW_UPS.get(order.kind)
        if handler is not None:
            await handler(self, client, order, deadline)

    async def shopper(
        self,
        client: aiohttp.ClientSession,
        token: str,
        skus: list[str],
        until: float,
        pause: float,
        gateway: str | None = None,
    ) -> None:
        """Place orders of random kinds until ``until``, through ``gateway`` (default: the home one)."""
        if gateway is not None:
            _GATEWAY.set(gateway)  # this shopper's task only, and the follow-ups it starts
        while time.monotonic() < until:
            await self.order(client, token, skus, self.rng.choice(KINDS))
            await asyncio.sleep(pause)

    def figures(self) -> dict[str, object]:
        """The follow-up requests and their answers, for the table."""
        figures: dict[str, object] = {}
        for what in sorted({what for what, _ in self.tally}):
            answers = sorted((answer, n) for (request, answer), n in self.tally.items() if request == what)
            figures[f"requests: {what}"] = ", ".join(f"{answer} x{n}" for answer, n in answers)
        if self.missing:
            figures["skipped (the gateway has no such endpoint)"] = ", ".join(sorted(self.missing))
        return figures


async def _approve_checkout(
    traffic: Traffic, client: aiohttp.ClientSession, order: Accepted, deadline: float
) -> None:
    state = await traffic.wait_for(
        client,
        order,
        lambda s: s["payment"].get("checkout_url") or s["status"] not in ("PENDING", "AWAITING_PAYMENT"),
        deadline,
    )
    if state and state["payment"].get("checkout_url") and state["status"] == "AWAITING_PAYMENT":
        await traffic.call(client, "POST", f"{state['payment']['checkout_url']}/approve", deadline=deadline)


async def _cancel(traffic: Traffic, client: aiohttp.ClientSession, order: Accepted, deadline: float) -> None:
    await traffic.call(
        client,
        "POST",
        f"{traffic.gateway_url}/orders/{order.order_id}/cancel",
        deadline=deadline,
        token=order.token,
    )


async def _cancel_after_payment(
    traffic: Traffic, client: aiohttp.ClientSession, order: Accepted, deadline: float
) -> None:
    placed = await traffic.wait_until_paid(client, order, deadline)
    if placed and placed["status"] == "PLACED":
        await _cancel(traffic, client, order, deadline)


FollowUp = Callable[[Traffic, aiohttp.ClientSession, Accepted, float], Awaitable[None]]
FOLLOW_UPS: dict[str, FollowUp] = {
    "redirect_approved": _approve_checkout,
    "customer_cancel": _cancel,
    "cancel_after_payment": _cancel_after_payment,
    "partial_refund": after_sale.partial_refunds,
    "return": after_sale.a_return,
    "address_change": changes.address_changes,
    "payment_change": changes.payment_change,
}


def _short(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("type") or body.get("title") or body)[:120]
    return str(body)[:120]
