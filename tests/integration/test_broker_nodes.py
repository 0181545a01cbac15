"""A BROKER_URL listing several nodes, the first one dead (a closed port), the second this run's
RabbitMQ: publishing, consuming and readiness go through the node that answers, and once a
process reached it, its next connections go there first."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer
from dramatiq import Message
from sqlalchemy import select

from config.broker_nodes import node_label
from gateway.app import create_app
from messaging.rabbitmq import fleet_broker
from models.tables import OutboxMessage
from tests.support.fleet import free_port
from tests.support.gateway_calls import customer, place
from tests.support.polling import eventually

REFUSED = "Connection refused"
QUEUE = "node_probe"


@pytest.fixture
def dead_node(settings) -> str:
    """The URL of a node that does not answer, in this run's vhost."""
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/{settings.broker_url.rsplit('/', 1)[1]}"


@pytest.fixture
def two_nodes(settings, dead_node):
    """Settings whose BROKER_URL lists the dead node first, then the live one."""
    return dataclasses.replace(settings, broker_url=f"{dead_node};{settings.broker_url}")


def refusals(caplog) -> int:
    return sum(REFUSED in record.getMessage() for record in caplog.records)


def test_a_publisher_and_a_consumer_reach_the_live_node_which_is_then_tried_first(two_nodes, caplog):
    caplog.set_level(logging.INFO, logger="pika")
    broker = fleet_broker(two_nodes, middleware=[])
    sent = [
        Message(queue_name=QUEUE, actor_name=QUEUE, args=(), kwargs={"n": n}, options={}) for n in range(2)
    ]
    try:
        broker.enqueue(sent[0])
        refused_first = refusals(caplog)
        del broker.connection  # as after a lost connection: the next use opens a new one
        broker.enqueue(sent[1])
        refused_again = refusals(caplog) - refused_first
        first_tried = broker.parameters[0].port
        consumer = broker.consume(QUEUE, prefetch=2, timeout=100)
        taken = [next(consumer), next(consumer)]
        consumer.close()
    finally:
        broker.flush(QUEUE)
        broker.close()

    assert refused_first >= 1 and refused_again == 0  # the dead node was tried once, not each time
    assert first_tried == 5672
    assert [m.message_id for m in taken if m is not None] == [m.message_id for m in sent]


async def test_the_gateway_is_ready_and_takes_orders_while_one_node_answers(
    two_nodes, dead_node, admin, sessionmaker
):
    async with TestClient(TestServer(create_app(two_nodes))) as client:
        response = await client.get("/readyz")
        body = await response.json()
        order_id = await place(client, admin, await customer(client))

        async def reserve_confirmed():
            async with sessionmaker() as session:
                return await session.scalar(
                    select(OutboxMessage.sent_at).where(
                        OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "reserve"
                    )
                )

        await eventually(reserve_confirmed, what="RabbitMQ to confirm the order's reserve message")

    dead = node_label(dead_node)
    assert response.status == 200
    assert set(body["checks"]) == {"database", "broker", f"broker {dead}", "broker 127.0.0.1:5672", "redis"}
    assert body["checks"]["broker"] == body["checks"]["broker 127.0.0.1:5672"] == "ok"
    assert body["checks"][f"broker {dead}"].startswith("down: ")


async def test_the_gateway_is_not_ready_when_no_node_answers(settings, dead_node):
    other_dead = dead_node.replace(node_label(dead_node).split(":")[1], str(free_port()))
    nowhere = dataclasses.replace(settings, broker_url=f"{dead_node};{other_dead}")
    async with TestClient(TestServer(create_app(nowhere))) as client:
        response = await client.get("/readyz")
        problem = await response.json()

    assert response.status == 503 and "broker" in problem["detail"]
    broker_checks = {name: state for name, state in problem["checks"].items() if name.startswith("broker")}
    assert len(broker_checks) == 3 and all(state.startswith("down: ") for state in broker_checks.values())
