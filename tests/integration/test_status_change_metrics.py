"""``orders_status_changes_total{status}``: each committed move of an order, counted once by the
process that made it (a step in a worker, or the gateway for the operator's and customer's moves).
"""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from actors.reserve import reserve_stock
from tests.integration.test_gateway_fulfilment import placed
from tests.support.factories import make_account, make_item, make_order
from tests.support.gateway_calls import customer


def worker_count(status: str) -> float:
    return REGISTRY.get_sample_value("orders_status_changes_total", {"status": status}) or 0.0


async def gateway_count(client, status: str) -> float:
    text = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "orders_status_changes_total" and sample.labels == {"status": status}:
                return sample.value
    return 0.0


async def test_a_step_counts_the_move_it_committed_once_however_often_delivered(runtime, sessionmaker):
    sku = await make_item(sessionmaker, stock=5)
    order_id = await make_order(sessionmaker, await make_account(sessionmaker), {sku: 1})
    before = worker_count("AWAITING_PAYMENT")

    assert await reserve_stock(runtime, order_id) == "AWAITING_PAYMENT"
    await reserve_stock(runtime, order_id)  # redelivered: moves nothing

    assert worker_count("AWAITING_PAYMENT") == before + 1


async def test_a_step_that_rejects_counts_the_rejection(runtime, sessionmaker):
    sku = await make_item(sessionmaker, stock=1)
    order_id = await make_order(sessionmaker, await make_account(sessionmaker), {sku: 2})
    before = worker_count("REJECTED"), worker_count("AWAITING_PAYMENT")

    assert await reserve_stock(runtime, order_id) == "REJECTED"

    assert (worker_count("REJECTED"), worker_count("AWAITING_PAYMENT")) == (before[0] + 1, before[1])


async def test_the_gateway_counts_the_moves_it_makes(client, admin, sessionmaker):
    order_id = await placed(client, admin, sessionmaker, await customer(client))

    assert (await client.post(f"/orders/{order_id}/ship", headers=admin)).status == 200
    assert (await client.post(f"/orders/{order_id}/ship", headers=admin)).status in {200, 409}

    assert await gateway_count(client, "SHIPPED") == 1
    assert await gateway_count(client, "DELIVERED") == 0
