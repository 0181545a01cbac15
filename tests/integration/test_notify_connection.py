"""notify sends over the worker's open SMTP connection: successive emails share it, one the
server dropped is replaced without a duplicate, and closing the runtime closes it."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from sqlalchemy import select

from actors.notify import send_notification
from models.state import NotificationStatus
from models.tables import Notification
from providers.mailer import MailTemporaryError
from tests.support.scenarios import placed_order as placed
from tests.support.smtp import CountingServer
from workers.runtime import build_runtime


@pytest.fixture
def server():
    server = CountingServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailing(runtime, server):
    """The runtime, sending mail to the counting server."""
    return dataclasses.replace(runtime, settings=dataclasses.replace(runtime.settings, smtp_url=server.url))


async def statuses(sessionmaker, order_ids: list[str]) -> list[str]:
    async with sessionmaker() as session:
        rows = dict(
            (
                await session.execute(
                    select(Notification.order_id, Notification.status).where(
                        Notification.order_id.in_(order_ids), Notification.event == "order.placed"
                    )
                )
            ).all()
        )
    return [rows.get(order_id) for order_id in order_ids]


async def test_successive_notifications_share_one_connection(mailing, sessionmaker, server):
    orders = [await placed(mailing, sessionmaker) for _ in range(3)]

    assert [await send_notification(mailing, order_id, "order.placed") for order_id in orders] == [
        NotificationStatus.SENT
    ] * 3
    assert await statuses(sessionmaker, orders) == [NotificationStatus.SENT] * 3
    assert [len(server.recorder.for_order(order_id)) for order_id in orders] == [1, 1, 1]
    assert len(server.recorder.connections) == 1


async def test_a_connection_dropped_between_two_notifications_is_replaced(mailing, sessionmaker, server):
    first, second, third = [await placed(mailing, sessionmaker) for _ in range(3)]

    assert await send_notification(mailing, first, "order.placed") == NotificationStatus.SENT
    server.drop_connection()  # the server closed it while idle
    await asyncio.sleep(0.1)
    assert await send_notification(mailing, second, "order.placed") == NotificationStatus.SENT
    server.recorder.drop_at_mail = 1  # and again, this time as the next email starts
    assert await send_notification(mailing, third, "order.placed") == NotificationStatus.SENT

    assert await statuses(sessionmaker, [first, second, third]) == [NotificationStatus.SENT] * 3
    assert [len(server.recorder.for_order(o)) for o in (first, second, third)] == [1, 1, 1]
    assert len(server.recorder.connections) == 3


async def test_a_refusal_is_recorded_failed_and_the_next_email_goes_out_on_the_same_connection(
    mailing, sessionmaker, server
):
    refused, accepted = [await placed(mailing, sessionmaker) for _ in range(2)]

    server.recorder.refuse_recipients = True
    assert await send_notification(mailing, refused, "order.placed") == NotificationStatus.FAILED
    server.recorder.refuse_recipients = False
    assert await send_notification(mailing, accepted, "order.placed") == NotificationStatus.SENT

    assert await statuses(sessionmaker, [refused, accepted]) == [
        NotificationStatus.FAILED,
        NotificationStatus.SENT,
    ]
    assert len(server.recorder.connections) == 1


async def test_a_delivery_whose_answer_was_lost_is_not_marked_sent(mailing, sessionmaker, server):
    order_id = await placed(mailing, sessionmaker)
    server.recorder.drop_after_data = 1  # the server keeps it; the worker cannot know it did

    with pytest.raises(
        MailTemporaryError
    ):  # retried later by dramatiq: at least once, never recorded as sent
        await send_notification(mailing, order_id, "order.placed")
    assert await statuses(sessionmaker, [order_id]) == [NotificationStatus.PENDING]
    assert len(server.recorder.for_order(order_id)) == 1


async def test_closing_the_runtime_closes_the_connection(settings, psp_url, sessionmaker, server):
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
    runtime = build_runtime(
        dataclasses.replace(settings, psp_url=psp_url, hold_seconds=60, smtp_url=server.url), broker
    )
    try:
        order_id = await placed(runtime, sessionmaker)
        assert await send_notification(runtime, order_id, "order.placed") == NotificationStatus.SENT
    finally:
        await runtime.close()

    async with asyncio.timeout(5):
        while server.recorder.quits < 1:
            await asyncio.sleep(0.01)
    assert len(server.recorder.connections) == 1
