"""End to end downstream: one email per event, domain events on the exchange, archive, reconciliation."""

from __future__ import annotations

import json
from collections import Counter

import pika
import pytest

from tests.e2e.conftest import ARCHIVE_AFTER_SECONDS
from tests.support.polling import eventually


@pytest.fixture
def events_queue(fleet):
    """A queue of another service, bound to every order event."""
    connection = pika.BlockingConnection(pika.URLParameters(fleet.env["BROKER_URL"]))
    channel = connection.channel()
    exchange = fleet.env.get("EVENTS_EXCHANGE", "orders.events")
    channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=exchange, routing_key="order.#")

    def received() -> list[dict]:
        bodies = []
        while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
            bodies.append({"routing_key": message[0].routing_key, **json.loads(message[2])})
        return bodies

    yield received
    connection.close()


async def test_each_order_event_sends_exactly_one_email(api, smtp):
    token, sku = await api.customer(), await api.item(stock=5)
    _, paid, _ = await api.order(token, {sku: 1})
    _, declined, _ = await api.order(
        token, {sku: 1}, payment={"method": "token", "token": "pm_card_declined"}
    )
    _, too_many, _ = await api.order(token, {sku: 50})
    await api.final_order(token, paid["id"], {"PLACED"})
    await api.call("POST", f"/orders/{paid['id']}/cancel", token=token)

    expected = {
        paid["id"]: {"order.placed", "order.cancelled", "order.refunded"},
        declined["id"]: {"order.cancelled"},
        too_many["id"]: {"order.rejected"},
    }

    async def all_arrived():
        return all(
            {m["X-Order-Event"] for m in smtp.recorder.for_order(order_id)} == events
            for order_id, events in expected.items()
        )

    await eventually(all_arrived, timeout=45, what="one email per order event")
    for order_id in expected:
        counts = Counter(m["X-Order-Event"] for m in smtp.recorder.for_order(order_id))
        assert set(counts.values()) == {1}, counts
    message = smtp.recorder.for_order(too_many["id"])[0]
    assert too_many["id"] in message["Subject"] and message["To"].endswith("@example.com")


async def test_other_services_receive_order_placed_with_the_order(api, events_queue):
    token, sku = await api.customer(), await api.item(stock=2)
    _, body, _ = await api.order(token, {sku: 1})
    await api.final_order(token, body["id"], {"PLACED"})

    seen: list[dict] = []

    async def placed_event():
        seen.extend(events_queue())
        return [e for e in seen if e["order"]["id"] == body["id"] and e["type"] == "order.placed"]

    [event] = await eventually(placed_event, timeout=20, what="order.placed on the events exchange")
    assert event["routing_key"] == "order.placed" and event["order"]["status"] == "PLACED"
    assert event["event_id"] and event["occurred_at"]


async def test_finished_orders_are_archived_and_still_readable(api):
    token, sku = await api.customer(), await api.item(stock=2)
    _, body, _ = await api.order(token, {sku: 5})  # more than in stock: REJECTED, final at once
    await api.final_order(token, body["id"], {"REJECTED"})

    async def archived():
        _, order, _ = await api.call("GET", f"/orders/{body['id']}", token=token)
        return order if order.get("archived") else None

    order = await eventually(archived, timeout=ARCHIVE_AFTER_SECONDS + 30, what="the order archived")
    assert (order["status"], order["reason"]) == ("REJECTED", "out_of_stock")
    assert [h["status"] for h in order["history"]] == ["PENDING", "REJECTED"]
    status, page, _ = await api.call("GET", "/orders", token=token)
    assert status == 200 and [(o["id"], o["archived"]) for o in page["orders"]] == [(body["id"], True)]


async def test_reconciliation_reports_a_balanced_ledger(api):
    async def report():
        status, body, _ = await api.call("GET", "/admin/reconciliation", token=api.admin_token)
        return body if status == 200 else None

    latest = await eventually(report, timeout=30, what="a reconciliation report")
    assert latest["skus_checked"] >= 1 and latest["drift_count"] == 0
