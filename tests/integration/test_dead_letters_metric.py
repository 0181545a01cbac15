"""Dead letters: their queues keep them for DEAD_LETTER_TTL_SECONDS, and /metrics counts them.

Each test declares queues in a vhost of its own: a TTL other than the default would otherwise
clash with the queues other tests declare in the run's vhost.
"""

from __future__ import annotations

import dataclasses
import socket
import time
import urllib.parse
import uuid

import pika
import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from dramatiq import Message

from gateway.app import create_app
from messaging.rabbitmq import FleetBroker, fleet_broker
from tests.support.gateway_calls import customer, place
from tests.support.isolation import management, own_vhost
from tests.support.polling import eventually, eventually_sync


@pytest.fixture
def vhost(run_name):
    """(name, BROKER_URL) of a vhost of this test's own."""
    name = f"{run_name}_{uuid.uuid4().hex[:6]}"
    with own_vhost(name) as broker_url:
        yield name, broker_url


def queue_info(vhost: str, queue: str) -> dict | None:
    try:
        return management("GET", f"/api/queues/{urllib.parse.quote(vhost, safe='')}/{queue}")  # type: ignore[return-value]
    except OSError:  # 404 until it is declared
        return None


def dead_letter(broker: FleetBroker, queue: str) -> None:
    """Publish a message to ``queue`` and reject it, so RabbitMQ moves it to ``queue.XQ``."""
    broker.declare_queue(queue, ensure=True)
    message = Message(queue_name=queue, actor_name=queue, args=(), kwargs={}, options={})
    broker.channel.basic_publish("", queue, message.encode(), pika.BasicProperties(delivery_mode=2))
    method, _, _ = broker.channel.basic_get(queue, auto_ack=False)
    broker.channel.basic_reject(method.delivery_tag, requeue=False)


def depth(broker: FleetBroker, queue: str) -> int:
    return broker.channel.queue_declare(queue, passive=True).method.message_count


def test_dead_letter_queues_are_declared_with_the_configured_ttl(settings, vhost):
    name, broker_url = vhost
    broker = fleet_broker(dataclasses.replace(settings, broker_url=broker_url, dead_letter_ttl_seconds=3600))
    try:
        broker.declare_queue("reserve", ensure=True)
    finally:
        broker.close()

    assert queue_info(name, "reserve.XQ")["arguments"] == {"x-message-ttl": 3_600_000}
    # The work and delay queues still dead-letter into it.
    for queue in ("reserve", "reserve.DQ"):
        assert queue_info(name, queue)["arguments"]["x-dead-letter-routing-key"] == "reserve.XQ"


async def test_the_gateway_declares_what_it_publishes_to_with_the_configured_ttl(settings, vhost):
    name, broker_url = vhost
    configured = dataclasses.replace(settings, broker_url=broker_url, dead_letter_ttl_seconds=7200)
    async with TestClient(TestServer(create_app(configured))) as client:
        admin = {"Authorization": f"Bearer {configured.admin_token}"}
        await place(client, admin, await customer(client))  # the outbox publishes `reserve`

        declared = await eventually(
            lambda: _async(queue_info(name, "reserve.XQ")),
            timeout=20,
            what="the gateway to declare reserve.XQ",
        )

    assert declared["arguments"] == {"x-message-ttl": 7_200_000}


async def _async(value):
    return value


def test_a_changed_ttl_keeps_the_existing_queue_and_still_publishes(settings, vhost):
    name, broker_url = vhost
    before = fleet_broker(dataclasses.replace(settings, broker_url=broker_url, dead_letter_ttl_seconds=3600))
    after = fleet_broker(dataclasses.replace(settings, broker_url=broker_url, dead_letter_ttl_seconds=60))
    try:
        before.declare_queue("pay", ensure=True)

        with structlog.testing.capture_logs() as logs:
            after.enqueue(Message(queue_name="pay", actor_name="pay", args=(), kwargs={}, options={}))

        assert after.get_queue_message_counts("pay") == (1, 0, 0)
    finally:
        before.close()
        after.close()
    assert queue_info(name, "pay.XQ")["arguments"] == {"x-message-ttl": 3_600_000}
    kept = [entry for entry in logs if entry["event"] == "broker.dead_letter_queue_kept"]
    assert kept and kept[0]["queue"] == "pay.XQ" and kept[0]["log_level"] == "warning"


async def test_metrics_count_the_dead_letters_of_each_queue(settings, vhost):
    _, broker_url = vhost
    configured = dataclasses.replace(settings, broker_url=broker_url)
    broker = fleet_broker(configured, middleware=[])
    try:
        dead_letter(broker, "reserve")
        dead_letter(broker, "reserve")
        dead_letter(broker, "notify")
        eventually_sync(
            lambda: depth(broker, "reserve.XQ") == 2 and depth(broker, "notify.XQ") == 1,
            what="the rejected messages to be dead-lettered",
        )
    finally:
        broker.close()

    async with TestClient(TestServer(create_app(configured))) as client:
        response = await client.get("/metrics")
        text = await response.text()

    assert response.status == 200
    assert 'orders_dead_letters{queue="reserve.XQ"} 2.0' in text
    assert 'orders_dead_letters{queue="notify.XQ"} 1.0' in text
    assert 'orders_dead_letters{queue="pay.XQ"} 0.0' in text  # never declared here: nothing in it


async def test_metrics_answer_quickly_when_the_broker_does_not(settings):
    # A port that accepts connections and then says nothing, like a broker that hangs.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hung = dataclasses.replace(
            settings, broker_url=f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}/%2F"
        )
        async with TestClient(TestServer(create_app(hung))) as client:
            started = time.monotonic()
            response = await client.get("/metrics")
            elapsed = time.monotonic() - started
            text = await response.text()

    assert response.status == 200 and elapsed < 5, elapsed
    assert "orders_outbox_unsent " in text and "orders_dead_letters{" not in text
