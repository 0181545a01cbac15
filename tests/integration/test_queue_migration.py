"""`orders-admin queues migrate`: every message of every fleet queue moved to queues of the other
type, in order and with its properties; an interrupted run finished by the next; nothing done
while a worker consumes. (tests/e2e/test_queue_migration.py runs the fleet on the result.)"""

from __future__ import annotations

import base64
import dataclasses
import uuid

import pika
import pytest
from dramatiq import Message

from messaging.rabbitmq import fleet_broker, queue_type_arguments
from ops.common import OpsError
from ops.queue_migration import QueueMigration, fleet_queue_names
from tests.support.isolation import own_vhost
from tests.support.queues import queue_types, snapshot


@pytest.fixture
def classic(settings, run_name):
    """(vhost, settings) of a classic fleet in a vhost of this test's own."""
    name = f"{run_name}_m{uuid.uuid4().hex[:6]}"
    with own_vhost(name) as broker_url:
        configured = dataclasses.replace(settings, broker_url=broker_url, queue_type="classic")
        yield name, configured


def fill(settings, queue: str, count: int, *, delay: int | None = None) -> list[str]:
    """Enqueue ``count`` messages to ``queue`` (to its .DQ with ``delay``) as the fleet does."""
    broker = fleet_broker(settings, middleware=[])
    try:
        return [
            broker.enqueue(
                Message(queue_name=queue, actor_name=queue, args=(), kwargs={"n": n}, options={}), delay=delay
            ).message_id
            for n in range(count)
        ]
    finally:
        broker.close()


def migrate(settings, to: str):
    migration = QueueMigration(settings, to)
    try:
        return migration.run()
    finally:
        migration.close()


def message_ids(vhost: str, queue: str) -> list[str]:
    """The dramatiq message ids in ``queue``, in order."""
    return [Message.decode(base64.b64decode(m["payload"])).message_id for m in snapshot(vhost).get(queue, [])]


def move_by_hand(url: str, source: str, target: str, count: int) -> None:
    """What an interrupted run may leave: ``count`` messages of ``source`` already in ``target``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for _ in range(count):
        method, properties, body = channel.basic_get(source, auto_ack=False)
        channel.basic_publish("", target, body, properties, mandatory=True)
        channel.basic_ack(method.delivery_tag)
    connection.close()


def test_every_message_of_every_kind_of_queue_moves_to_quorum_and_back(classic):
    vhost, settings = classic
    fill(settings, "reserve", 5)
    fill(settings, "expire", 3, delay=3_600_000)  # delayed: in expire.DQ, their eta in the body
    broker = fleet_broker(settings, middleware=[])
    broker.declare_queue("notify", ensure=True)
    for _ in range(2):  # dead letters: in notify.XQ with RabbitMQ's x-death header
        fill(settings, "notify", 1)
        method, _, _ = broker.channel.basic_get("notify", auto_ack=False)
        broker.channel.basic_reject(method.delivery_tag, requeue=False)
    broker.close()
    before = snapshot(vhost)
    assert {name: len(messages) for name, messages in before.items()} == {
        "reserve": 5,
        "expire.DQ": 3,
        "notify.XQ": 2,
    }

    moves = migrate(settings, "quorum")

    types = queue_types(vhost)
    assert {types[name] for name in fleet_queue_names()} == {"quorum"} and len(types) == 30
    assert snapshot(vhost) == before  # same messages, same order, same properties and headers
    assert sum(move.messages for move in moves) == 10
    assert {move.queue: move.was for move in moves}["reserve"] == "classic"

    again = migrate(settings, "quorum")  # nothing left to do
    assert {move.was for move in again} == {"quorum"} and sum(move.messages for move in again) == 0

    migrate(settings, "classic")  # the way back (quorum queues are deleted without if-empty)
    types = queue_types(vhost)
    assert {types[name] for name in fleet_queue_names()} == {"classic"} and len(types) == 30
    assert snapshot(vhost) == before


def test_a_run_interrupted_while_moving_a_queue_out_is_finished_by_the_next(classic):
    vhost, settings = classic
    ids = fill(settings, "reserve", 10)
    # Interrupted after four messages reached the holding queue.
    broker = fleet_broker(settings, middleware=[])
    broker.channel.queue_declare("reserve.migrating", durable=True, arguments=queue_type_arguments("quorum"))
    broker.close()
    move_by_hand(settings.broker_url, "reserve", "reserve.migrating", 4)

    migrate(settings, "quorum")

    assert queue_types(vhost)["reserve"] == "quorum" and "reserve.migrating" not in queue_types(vhost)
    assert message_ids(vhost, "reserve") == ids  # all ten, once each, in their order


def test_a_run_interrupted_after_deleting_a_queue_brings_its_messages_back(classic):
    vhost, settings = classic
    ids = fill(settings, "pay", 6)
    broker = fleet_broker(settings, middleware=[])
    broker.channel.queue_declare("pay.migrating", durable=True, arguments=queue_type_arguments("quorum"))
    broker.close()
    move_by_hand(settings.broker_url, "pay", "pay.migrating", 6)
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    connection.channel().queue_delete("pay")  # interrupted before declaring it again
    connection.close()

    moves = migrate(settings, "quorum")

    assert {move.queue: (move.was, move.messages) for move in moves}["pay"] == ("missing", 6)
    assert queue_types(vhost)["pay"] == "quorum" and "pay.migrating" not in queue_types(vhost)
    assert message_ids(vhost, "pay") == ids


def test_nothing_moves_while_a_worker_consumes(classic):
    vhost, settings = classic
    fill(settings, "settle", 1)
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    channel.basic_consume("settle", lambda *_: None)
    try:
        with pytest.raises(OpsError, match=r"stop the workers first: settle \(1 consumer\(s\)\)"):
            migrate(settings, "quorum")
    finally:
        connection.close()

    assert queue_types(vhost)["settle"] == "classic"
    assert [len(messages) for messages in snapshot(vhost).values()] == [1]


def test_a_dry_run_tells_each_queue_and_changes_nothing(classic):
    vhost, settings = classic
    fill(settings, "reserve", 2)
    migration = QueueMigration(settings, "quorum")
    try:
        plan = {move.queue: (move.was, move.messages) for move in migration.plan()}
    finally:
        migration.close()

    assert plan["reserve"] == ("classic", 2) and plan["reserve.DQ"] == ("classic", 0)
    assert plan["pay"] == ("missing", 0)
    assert queue_types(vhost) == {"reserve": "classic", "reserve.DQ": "classic", "reserve.XQ": "classic"}
