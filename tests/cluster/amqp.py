"""Small pika helpers: a connection to one node, a quorum queue, a confirmed publish, a get."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tests.support import isolation
from tests.support.polling import eventually_sync


@contextmanager
def channel_to(url: str) -> Iterator[BlockingChannel]:
    """A channel with publisher confirms over a connection to the one node ``url`` names."""
    parameters = pika.URLParameters(url)
    parameters.blocked_connection_timeout = 30
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel
    finally:
        if connection.is_open:
            connection.close()


def declare_quorum_queue(channel: BlockingChannel, prefix: str = "q") -> str:
    """Declare a durable quorum queue with a fresh name; its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    return name


def publish_confirmed(channel: BlockingChannel, queue: str, body: bytes) -> None:
    """Publish ``body`` to ``queue``; returns once the broker confirmed it (raises if it was not routed)."""
    channel.basic_publish("", queue, body, properties=pika.BasicProperties(delivery_mode=2), mandatory=True)


def get_one(channel: BlockingChannel, queue: str, *, timeout: float = 20.0) -> bytes:
    """The next message of ``queue`` (acknowledged), waiting for one up to ``timeout`` seconds."""

    def fetch() -> bytes | None:
        method, _properties, body = channel.basic_get(queue)
        if method is None:
            return None
        channel.basic_ack(method.delivery_tag)
        return body

    return eventually_sync(fetch, timeout=timeout, interval=0.1, what=f"a message on {queue}")


def default_node_names() -> list[str]:
    """The machine's default RabbitMQ node answers AMQP on 5672; the nodes its management API lists.

    Raises when it does not answer: the cluster must leave it alone.
    """
    with channel_to(f"{isolation.AMQP_SERVER}/%2F") as channel:
        assert channel.is_open
    nodes = isolation.management("GET", "/api/nodes")
    assert isinstance(nodes, list)
    return [node["name"] for node in nodes if node.get("running")]
