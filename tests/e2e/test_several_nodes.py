"""The whole fleet with QUEUE_TYPE=quorum and a BROKER_URL whose first node does not answer: every
process kind connects to the node that does (gateway, workers, scheduler, orders-admin), orders
end as they should, and /readyz is 200 while reporting the dead node."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse

import aiohttp
import pika
import pytest

from config.broker_nodes import broker_nodes
from messaging.rabbitmq import queue_type_arguments
from tests.support import isolation
from tests.support.api import Api
from tests.support.fleet import ROOT, Fleet, fleet_environment, free_port
from tests.support.isolation import own_database, own_vhost
from tests.support.polling import eventually
from tests.support.queues import queue_types

HOLD_SECONDS = 3


def card(token: str) -> dict[str, str]:
    return {"method": "token", "token": token}


@pytest.fixture(scope="module")
def cluster_fleet(run_name, tmp_path_factory):
    """A quorum fleet told of two nodes: a closed port first, the machine's RabbitMQ second."""
    workdir = tmp_path_factory.mktemp("nodes")
    name = f"{run_name}_nodes"
    with own_database(name) as database_url, own_vhost(name) as live:
        dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/{live.rsplit('/', 1)[1]}"
        env = fleet_environment(
            database_url=database_url,
            broker_url=f"{dead};{live}",
            redis_url=isolation.REDIS_URL,
            workdir=workdir,
            ADMIN_TOKEN="nodes-admin-token",
            HOLD_SECONDS=str(HOLD_SECONDS),
            QUEUE_TYPE="quorum",
        )
        fleet = Fleet(env=env, log_path=workdir / "fleet.log")
        fleet.start()
        try:
            yield fleet, name
        finally:
            fleet.stop()
        print(f"\nfleet log: {fleet.log_path}")


@pytest.fixture
async def api(cluster_fleet):
    fleet, _ = cluster_fleet
    async with aiohttp.ClientSession() as client:
        yield Api(client, fleet.gateway_url, fleet.env["ADMIN_TOKEN"])


@pytest.fixture
def events_queue(cluster_fleet):
    """A downstream service's queue (named, durable, quorum) bound to every order event."""
    fleet, _ = cluster_fleet
    live = broker_nodes(fleet.env["BROKER_URL"])[1]
    connection = pika.BlockingConnection(pika.URLParameters(live))
    channel = connection.channel()
    channel.exchange_declare(exchange="orders.events", exchange_type="topic", durable=True)
    channel.queue_declare("billing.orders", durable=True, arguments=queue_type_arguments("quorum"))
    channel.queue_bind("billing.orders", "orders.events", routing_key="order.#")

    def received() -> list[dict]:
        bodies = []
        while (message := channel.basic_get("billing.orders", auto_ack=True))[0] is not None:
            bodies.append(json.loads(message[2]))
        return bodies

    yield received
    connection.close()


async def test_orders_end_as_they_should_through_the_node_that_answers(api, cluster_fleet, events_queue):
    _, vhost = cluster_fleet
    token, sku = await api.customer(), await api.item(stock=10)
    _, paid, _ = await api.order(token, {sku: 1})
    _, declined, _ = await api.order(token, {sku: 1}, payment=card("pm_card_declined"))
    _, unpaid, _ = await api.order(token, {sku: 1}, payment=card("pm_card_no_response"))

    placed = await api.final_order(token, paid["id"], {"PLACED"})
    failed = await api.final_order(token, declined["id"], {"CANCELLED"})
    expired = await api.final_order(token, unpaid["id"], {"CANCELLED"}, timeout=HOLD_SECONDS + 30)

    assert placed["payment"]["status"] == "SUCCEEDED"
    assert failed["reason"] == "payment_failed" and expired["reason"] == "payment_timeout"
    assert await api.available(sku) == 9
    seen: list[dict] = []

    async def placed_event():
        seen.extend(events_queue())
        return any(e["type"] == "order.placed" and e["order"]["id"] == paid["id"] for e in seen)

    await eventually(placed_event, timeout=20, what="order.placed on the service's quorum queue")
    types = queue_types(vhost)
    assert {"reserve", "reserve.DQ", "reserve.XQ", "expire.DQ", "billing.orders"} <= set(types)
    assert set(types.values()) == {"quorum"}


async def test_readyz_is_200_and_names_the_node_that_is_down(api, cluster_fleet):
    fleet, _ = cluster_fleet
    dead = broker_nodes(fleet.env["BROKER_URL"])[0]

    status, body, _ = await api.call("GET", "/readyz")

    checks = body["checks"]
    assert status == 200 and checks["broker"] == "ok"
    assert checks[f"broker 127.0.0.1:{urllib.parse.urlsplit(dead).port}"].startswith("down: ")
    assert checks["broker 127.0.0.1:5672"] == "ok"
    async with api.client.get(f"{api.base_url}/metrics") as response:
        text = await response.text()
    assert 'orders_dead_letters{queue="reserve.XQ"} 0.0' in text  # counted through the live node


def test_the_operator_tool_works_through_the_node_that_answers(cluster_fleet):
    fleet, _ = cluster_fleet

    def admin(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ops", *args],
            cwd=ROOT,
            env={**fleet.env, "LOG_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    listing, redrive = admin("dead-letters", "list"), admin("redrive")

    assert listing.returncode == 0 and "no dead-lettered messages" in listing.stdout, listing.stderr
    assert redrive.returncode == 0 and "pending_stuck" in redrive.stdout, redrive.stderr
