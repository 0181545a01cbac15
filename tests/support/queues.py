"""What RabbitMQ holds in a vhost, read through the management API: queue types and messages."""

from __future__ import annotations

import urllib.parse
from typing import Any

from tests.support.isolation import management

#: Headers RabbitMQ adds or updates when it hands a message out again (quorum queues count
#: deliveries): not part of what a message is.
DELIVERY_HEADERS = ("x-delivery-count",)


def _vhost(vhost: str) -> str:
    return urllib.parse.quote(vhost, safe="")


def queues(vhost: str) -> dict[str, dict[str, Any]]:
    """Every queue of ``vhost`` by name, as the management API describes it (type, arguments...)."""
    listed = management("GET", f"/api/queues/{_vhost(vhost)}")
    return {queue["name"]: queue for queue in listed}  # type: ignore[union-attr]


def queue_types(vhost: str) -> dict[str, str]:
    """The type (``classic``, ``quorum``) of every queue of ``vhost``."""
    return {name: queue["type"] for name, queue in queues(vhost).items()}


def peek(vhost: str, queue: str, count: int = 1000) -> list[dict[str, Any]]:
    """Up to ``count`` messages of ``queue``, in order, left in place: each a dict of its payload
    (base64), routing key and properties (headers without RabbitMQ's delivery count)."""
    taken = management(
        "POST",
        f"/api/queues/{_vhost(vhost)}/{urllib.parse.quote(queue, safe='')}/get",
        {"count": count, "ackmode": "ack_requeue_true", "encoding": "base64"},
    )
    messages = []
    for message in taken:  # type: ignore[union-attr]
        properties = dict(message["properties"])
        headers = {k: v for k, v in properties.pop("headers", {}).items() if k not in DELIVERY_HEADERS}
        if headers:
            properties["headers"] = headers
        messages.append({"payload": message["payload"], "properties": properties})
    return messages


def snapshot(vhost: str) -> dict[str, list[dict[str, Any]]]:
    """Every non-empty queue of ``vhost`` with its messages (see :func:`peek`)."""
    # Every queue is looked into: the management API's message counts lag by seconds.
    return {name: taken for name in sorted(queues(vhost)) if (taken := peek(vhost, name))}
