"""Customer emails and domain events: each once per order event, also when steps run twice."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pika
import pytest
from sqlalchemy import select

from actors.cancel import cancel_order
from actors.notify import ClaimedElsewhere, send_notification
from actors.settle import settle_payment
from models.state import NotificationStatus
from models.tables import Notification, OutboxMessage
from providers.mailer import MailTemporaryError
from tests.support.factories import load_order
from tests.support.scenarios import placed_order as placed
from tests.support.scenarios import provider_event
from workers import steps


async def outbox_for(sessionmaker, order_id: str) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.order_id == order_id)
                    .order_by(OutboxMessage.created_at)
                )
            ).all()
        )


async def test_a_transition_enqueues_its_email_and_its_domain_event_in_the_same_transaction(
    runtime, sessionmaker
):
    order_id = await placed(runtime, sessionmaker)
    await runtime.publisher.flush()  # confirmed rows are marked sent in the process's next batch

    rows = await outbox_for(sessionmaker, order_id)
    notifies = [r.kwargs for r in rows if r.actor_name == "notify"]
    events = [r for r in rows if r.exchange]
    assert notifies == [{"order_id": order_id, "event_type": "order.placed"}]
    [event] = events
    assert (event.exchange, event.routing_key) == (runtime.settings.events_exchange, "order.placed")
    assert event.kwargs["type"] == "order.placed" and event.kwargs["order"]["id"] == order_id
    assert event.kwargs["order"]["status"] == "PLACED" and event.kwargs["event_id"]
    assert all(r.sent_at is not None for r in rows)  # published after commit


async def test_a_move_announces_itself_and_nothing_is_inferred_from_the_session(runtime, sessionmaker):
    from models.repository import lock_order
    from models.state import OrderStatus

    order_id = await placed(runtime, sessionmaker)
    before = len(await outbox_for(sessionmaker, order_id))
    async with runtime.uow() as uow:
        order = await lock_order(uow.session, order_id)
        order._status = OrderStatus.SHIPPED.value  # a change no move made: not announced
        await uow.commit()
    assert len(await outbox_for(sessionmaker, order_id)) == before

    async with runtime.uow() as uow:
        uow.move(await lock_order(uow.session, order_id), OrderStatus.DELIVERED)
        await uow.commit()
    added = (await outbox_for(sessionmaker, order_id))[before:]
    assert sorted((r.actor_name or r.routing_key) for r in added) == ["notify", "order.delivered"]


async def test_email_goes_out_once_even_when_delivered_twice_or_at_once(mailing, sessionmaker, smtp):
    order_id = await placed(mailing, sessionmaker)

    results = await asyncio.gather(
        *(send_notification(mailing, order_id, "order.placed") for _ in range(3)), return_exceptions=True
    )
    again = await send_notification(mailing, order_id, "order.placed")

    # One sends; one that finds it being sent comes back later (retried), one that finds it sent stops.
    assert results.count(NotificationStatus.SENT) == 1 and again is None
    assert all(
        r == NotificationStatus.SENT or r is None or isinstance(r, ClaimedElsewhere) for r in results
    ), results
    [message] = smtp.recorder.for_order(order_id)
    assert order_id in message["Subject"] and message["X-Order-Event"] == "order.placed"
    assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
    assert order_id in message.get_body(("plain",)).get_content()


async def test_mail_server_down_retries_then_gives_up_and_records_it(runtime, sessionmaker):
    down = dataclasses.replace(
        runtime, settings=dataclasses.replace(runtime.settings, smtp_url="smtp://127.0.0.1:9")
    )
    order_id = await placed(runtime, sessionmaker)

    with pytest.raises(MailTemporaryError):
        await send_notification(down, order_id, "order.placed")  # dramatiq retries with backoff
    async with sessionmaker() as session:
        entry = await session.scalar(select(Notification).where(Notification.order_id == order_id))
        assert (entry.status, entry.attempts) == (NotificationStatus.PENDING, 1) and entry.last_error

    token = steps._retries.set(15)
    try:
        assert await send_notification(down, order_id, "order.placed") == NotificationStatus.FAILED
    finally:
        steps._retries.reset(token)
    async with sessionmaker() as session:
        entry = await session.scalar(select(Notification).where(Notification.order_id == order_id))
        assert entry.status == NotificationStatus.FAILED and entry.attempts == 2


async def test_mail_refused_for_good_is_recorded_without_retrying(mailing, sessionmaker, smtp):
    order_id = await placed(mailing, sessionmaker)
    smtp.recorder.refuse = True

    assert await send_notification(mailing, order_id, "order.placed") == NotificationStatus.FAILED
    assert await send_notification(mailing, order_id, "order.placed") is None


async def test_cancel_and_refund_announce_each_event_once(runtime, sessionmaker):
    order_id = await placed(runtime, sessionmaker)
    await asyncio.gather(*(cancel_order(runtime, order_id, "customer_cancelled") for _ in range(2)))
    order = await load_order(sessionmaker, order_id)
    # The cancel's refund is filed under the payment's id; the provider's event names it.
    metadata = {"order_id": order_id, "payment_id": order.payment.id, "refund_id": order.payment.id}
    made = await runtime.psp.refund(
        idempotency_key=f"refund-{order.payment.id}",
        provider_payment_id=order.payment.provider_payment_id,
        amount_cents=order.payment.amount_cents,
        metadata=metadata,
    )
    refund_event = await provider_event(
        sessionmaker, order_id, "refund.succeeded", refund_id=made.id, metadata=metadata
    )
    await settle_payment(runtime, refund_event, order_id)
    await settle_payment(runtime, refund_event, order_id)

    rows = await outbox_for(sessionmaker, order_id)
    assert sorted(r.kwargs["event_type"] for r in rows if r.actor_name == "notify") == [
        "order.cancelled",
        "order.placed",
        "order.refunded",
    ]
    assert sorted(r.routing_key for r in rows if r.exchange) == [
        "order.cancelled",
        "order.placed",
        "order.refunded",
    ]


async def test_a_service_bound_with_order_hash_receives_the_events(runtime, sessionmaker, settings):
    exchange = runtime.settings.events_exchange
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=exchange, routing_key="order.#")
    try:
        order_id = await placed(runtime, sessionmaker)
        await runtime.publisher.flush()  # committed messages go out in the background
        received = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            received.append((method.routing_key, properties.delivery_mode, json.loads(body)))
    finally:
        connection.close()

    mine = [(key, mode, body) for key, mode, body in received if body["order"]["id"] == order_id]
    assert [(key, mode) for key, mode, _ in mine] == [("order.placed", 2)]
    assert set(mine[0][2]) == {"event_id", "type", "occurred_at", "order"}
