"""An email whose delivery died mid-send still goes out: a live claim sends the message back for
later instead of acknowledging it, and the sweep re-drives a claim that lapsed long ago."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from actors.notify import ClaimedElsewhere, send_notification
from messaging.sweep import sweep
from models.clock import utcnow
from models.state import NotificationStatus
from models.tables import Notification, OutboxMessage
from tests.support.scenarios import placed_order as placed


async def claimed_by_a_dead_delivery(sessionmaker, order_id: str, lapsed_seconds_ago: float | None) -> None:
    """The ledger row as a worker killed between claiming it and sending leaves it."""
    until = (
        utcnow() + timedelta(seconds=60)
        if lapsed_seconds_ago is None
        else utcnow() - timedelta(seconds=lapsed_seconds_ago)
    )
    async with sessionmaker() as session, session.begin():
        session.add(
            Notification(
                order_id=order_id,
                event="order.placed",
                status=NotificationStatus.SENDING,
                claimed_until=until,
                attempts=1,
            )
        )


async def ledger(sessionmaker, order_id: str) -> Notification:
    async with sessionmaker() as session:
        return await session.scalar(select(Notification).where(Notification.order_id == order_id))


async def test_a_redelivery_during_a_live_claim_retries_instead_of_dropping_the_email(
    mailing, sessionmaker, smtp
):
    order_id = await placed(mailing, sessionmaker)
    await claimed_by_a_dead_delivery(sessionmaker, order_id, lapsed_seconds_ago=None)

    with pytest.raises(ClaimedElsewhere) as retry:
        await send_notification(mailing, order_id, "order.placed")
    # dramatiq brings the message back just after the claim (60 s here) lapses.
    assert 55_000 <= retry.value.delay <= 62_000
    assert smtp.recorder.for_order(order_id) == []

    # The retry comes after the claim lapsed: it takes over and sends, once.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Notification)
            .where(Notification.order_id == order_id)
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
    assert await send_notification(mailing, order_id, "order.placed") == NotificationStatus.SENT
    assert await send_notification(mailing, order_id, "order.placed") is None
    assert len(smtp.recorder.for_order(order_id)) == 1
    assert (await ledger(sessionmaker, order_id)).status == NotificationStatus.SENT


async def test_the_sweep_re_drives_a_claim_that_lapsed_long_ago(runtime, sessionmaker):
    order_id = await placed(runtime, sessionmaker)
    await claimed_by_a_dead_delivery(sessionmaker, order_id, lapsed_seconds_ago=600)
    recent = await placed(runtime, sessionmaker)
    await claimed_by_a_dead_delivery(sessionmaker, recent, lapsed_seconds_ago=1)

    report = await sweep(sessionmaker, runtime.publisher)

    assert report.counts["email_abandoned"] >= 1
    async with sessionmaker() as session:
        requeued = (
            await session.scalars(
                select(OutboxMessage.order_id).where(
                    OutboxMessage.actor_name == "notify",
                    OutboxMessage.kwargs["event_type"].as_string() == "order.placed",
                    OutboxMessage.order_id.in_([order_id, recent]),
                )
            )
        ).all()
    # Each order has the notify its settle enqueued; only the long-lapsed one got a second.
    assert sorted(requeued) == sorted([order_id, order_id, recent])
