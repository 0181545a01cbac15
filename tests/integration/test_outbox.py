"""The outbox: messages leave only after commit; a crash between commit and publish loses nothing."""

from __future__ import annotations

import asyncio
import json

import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import event, select

from messaging.outbox import OutboxPublisher, relay_unsent
from messaging.queues import Route
from models.tables import OutboxMessage
from models.unit_of_work import UnitOfWork


class CrashBeforePublish:
    """A publisher standing in for a process that died right after its commit."""

    def __init__(self):
        self.calls = 0

    async def publish(self, messages):
        self.calls += 1
        raise SystemError("process killed between commit and publish")


def take_all(broker_url: str, queue: str) -> list[dict]:
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        channel = connection.channel()
        bodies = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(json.loads(body))
    finally:
        connection.close()


async def sent_at(sessionmaker, outbox_id: str):
    async with sessionmaker() as session:
        return await session.scalar(select(OutboxMessage.sent_at).where(OutboxMessage.id == outbox_id))


async def test_a_unit_of_work_left_without_commit_sends_nothing(sessionmaker, settings):
    publisher = CrashBeforePublish()
    route = Route("outbox_probe", "outbox_probe_rollback")
    async with UnitOfWork(sessionmaker, publisher) as uow:
        message = uow.enqueue(route, order_id="o-rollback")
        await uow.session.flush()

    assert publisher.calls == 0
    async with sessionmaker() as session:
        assert await session.get(OutboxMessage, message.id) is None


async def test_relay_republishes_what_a_crash_left_unsent(sessionmaker, settings):
    route = Route("outbox_probe", "outbox_probe_relay")
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
    broker.declare_queue(route.queue_name, ensure=True)
    publisher = OutboxPublisher(broker, sessionmaker)
    try:
        async with UnitOfWork(sessionmaker, CrashBeforePublish()) as uow:
            message = uow.enqueue(route, order_id="o-relay", extra=7)
            await uow.commit()  # committed; the publish "crashed"

        assert await sent_at(sessionmaker, message.id) is None
        assert take_all(settings.broker_url, route.queue_name) == []

        assert await relay_unsent(sessionmaker, publisher, older_than_seconds=0) >= 1

        assert await sent_at(sessionmaker, message.id) is not None
        delivered = take_all(settings.broker_url, route.queue_name)
        assert [(m["message_id"], m["actor_name"], m["kwargs"]) for m in delivered] == [
            (message.id, "outbox_probe", {"order_id": "o-relay", "extra": 7})
        ]
        # Once marked sent the relay leaves it alone.
        await relay_unsent(sessionmaker, publisher, older_than_seconds=0)
        assert take_all(settings.broker_url, route.queue_name) == []
    finally:
        publisher.close()


async def test_rows_confirmed_together_are_marked_sent_in_one_statement(sessionmaker, settings):
    route = Route("outbox_probe", "outbox_probe_batch")
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
    publisher = OutboxPublisher(broker, sessionmaker)
    marks: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE outbox"):
            marks.append(statement)

    event.listen(sessionmaker.kw["bind"].sync_engine, "before_cursor_execute", seen)
    try:

        async def one_unit_of_work(n: int) -> str:
            async with UnitOfWork(sessionmaker, publisher) as uow:
                message = uow.enqueue(route, order_id=f"o-batch-{n}")
                await uow.commit()
            return message.id

        ids = await asyncio.gather(*(one_unit_of_work(n) for n in range(10)))
        await publisher.flush()

        assert all([await sent_at(sessionmaker, outbox_id) for outbox_id in ids])
        assert len(marks) < len(ids)
    finally:
        event.remove(sessionmaker.kw["bind"].sync_engine, "before_cursor_execute", seen)
        publisher.close()


async def test_publish_after_commit_marks_rows_sent(sessionmaker, settings):
    route = Route("outbox_probe", "outbox_probe_direct")
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
    publisher = OutboxPublisher(broker, sessionmaker)
    try:
        async with UnitOfWork(sessionmaker, publisher) as uow:
            message = uow.enqueue(route, order_id="o-direct")
            await uow.commit()
        await publisher.flush()

        assert await sent_at(sessionmaker, message.id) is not None
        assert [m["message_id"] for m in take_all(settings.broker_url, route.queue_name)] == [message.id]
    finally:
        publisher.close()


async def test_a_publisher_on_a_workers_broker_closes_only_its_own_connection(sessionmaker, settings):
    # In a worker process the broker is dramatiq's: its threads keep their channels until dramatiq
    # stops them and closes the broker itself. Closed from another thread in the middle of a publish,
    # a channel's frames interleave and RabbitMQ drops the connection (UNEXPECTED_FRAME).
    route = Route("outbox_probe", "outbox_probe_shared")
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
    workers_channel = broker.channel  # a dramatiq thread's channel (here: this thread's)
    publisher = OutboxPublisher(broker, sessionmaker, owns_broker=False)
    try:
        async with UnitOfWork(sessionmaker, publisher) as uow:
            message = uow.enqueue(route, order_id="o-shared")
            await uow.commit()
        await publisher.flush()
        assert len(broker.connections) == 2  # the publishing thread opened its own

        await publisher.aclose()

        assert workers_channel.is_open
        assert broker.connections == {broker.connection} and broker.channels == {workers_channel}
        assert [m["message_id"] for m in take_all(settings.broker_url, route.queue_name)] == [message.id]
    finally:
        broker.close()
