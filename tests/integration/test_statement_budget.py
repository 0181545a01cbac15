"""SQL statements one placed order costs, stage by stage, counted at the driver.

A placed order's CPU goes largely to round trips with the database, so each stage has a budget
of statements (SELECT, INSERT, UPDATE, DELETE, as MariaDB's counters and the benchmark count
them); a change that adds one shows up here before it shows up in the benchmark. The counts
include the outbox's "mark sent" UPDATE, which under load is shared by many orders.
"""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager

import aiohttp
from sqlalchemy import event

from actors.pay import request_payment
from actors.reserve import reserve_stock
from actors.settle import settle_payment
from gateway.keys import ENGINE, PUBLISHER
from providers.webhook_signature import HEADER, sign
from tests.support.factories import load_order, make_item
from tests.support.gateway_calls import customer

COUNTED = ("SELECT", "INSERT", "UPDATE", "DELETE")

#: Statements per stage of one placed order (one line, token payment): the budget each may use.
BUDGET = {"post_order": 10, "reserve": 7, "pay": 3, "webhook": 3, "settle": 10}


class StatementCounter:
    """Counts the statements the engines send, by first keyword."""

    def __init__(self, engines, publishers):
        self.engines = [engine.sync_engine for engine in engines]
        self.publishers = publishers
        self.statements: list[str] = []

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        keyword = statement.lstrip().split(None, 1)[0].upper()
        if keyword in COUNTED:
            self.statements.append(statement)

    @asynccontextmanager
    async def stage(self, into: dict[str, list[str]], name: str):
        """Record what the engines send inside the block as stage ``name``, its outbox marks included."""
        self.statements = []
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._seen)
        try:
            yield
            for publisher in self.publishers:
                await publisher.flush()
        finally:
            for engine in self.engines:
                event.remove(engine, "before_cursor_execute", self._seen)
            into[name] = self.statements


async def _provider_payment(psp_url: str, provider_payment_id: str) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{psp_url}/v1/payments/{provider_payment_id}") as response:
            return await response.json()


async def test_a_placed_order_stays_within_its_statement_budget(
    client, runtime, sessionmaker, settings, psp_url
):
    auth = await customer(client)
    sku = await make_item(sessionmaker, stock=5)
    app = client.server.app
    counter = StatementCounter([app[ENGINE], runtime.engine], [app[PUBLISHER], runtime.publisher])
    stages: dict[str, list[str]] = {}

    async with counter.stage(stages, "post_order"):
        response = await client.post(
            "/orders",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "items": [{"sku": sku, "quantity": 1}],
                "payment": {"method": "token", "token": "pm_card_ok"},
            },
        )
        assert response.status == 202, await response.text()
    order_id = (await response.json())["id"]
    async with counter.stage(stages, "reserve"):
        assert await reserve_stock(runtime, order_id) == "AWAITING_PAYMENT"
    async with counter.stage(stages, "pay"):
        provider_payment_id = await request_payment(runtime, order_id)
    order = await load_order(sessionmaker, order_id)
    record = await _provider_payment(psp_url, provider_payment_id)
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "created": 0,
            "data": {
                "payment_id": provider_payment_id,
                "amount_cents": record["amount_cents"],
                "currency": record["currency"],
                "metadata": {"order_id": order_id, "payment_id": order.payment.id},
            },
        }
    ).encode()
    async with counter.stage(stages, "webhook"):
        received = await client.post(
            "/payments/webhook",
            data=body,
            headers={HEADER: sign(settings.psp_webhook_secret, body), "Content-Type": "application/json"},
        )
        assert received.status == 200, await received.text()
    async with counter.stage(stages, "settle"):
        assert await settle_payment(runtime, event_id, order_id, provider_payment_id) == "placed"

    counts = {name: len(statements) for name, statements in stages.items()}
    over = {name: stages[name] for name, count in counts.items() if count > BUDGET[name]}
    assert not over, f"over budget: {counts} (budget {BUDGET}); statements: {over}"
    assert sum(counts.values()) <= sum(BUDGET.values())
