"""The notify ledger row: claimed before sending, taken over once lapsed, never claimed twice by
racing deliveries, FAILED when there is no order to write about."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from actors.notify import ClaimedElsewhere, send_notification
from models.clock import utcnow
from models.state import NotificationStatus
from models.tables import Account, Notification, Order
from tests.support.factories import make_account, make_order
from tests.support.scenarios import placed_order as placed

notify_module = importlib.import_module("actors.notify")


async def ledger(sessionmaker, order_id: str, event: str = "order.placed") -> Notification | None:
    async with sessionmaker() as session:
        return await session.scalar(
            select(Notification).where(Notification.order_id == order_id, Notification.event == event)
        )


async def add_ledger_row(sessionmaker, order_id: str, **values) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(Notification(order_id=order_id, event="order.placed", **values))


async def recipient_of(sessionmaker, order_id: str) -> str:
    async with sessionmaker() as session:
        return await session.scalar(
            select(Account.email).join(Order, Order.account_id == Account.id).where(Order.id == order_id)
        )


async def test_an_order_that_is_gone_is_recorded_failed_and_nothing_is_sent(mailing, sessionmaker, smtp):
    order_id = uuid.uuid4().hex

    assert await send_notification(mailing, order_id, "order.placed") is None
    entry = await ledger(sessionmaker, order_id)
    assert (entry.status, entry.last_error, entry.attempts, entry.recipient) == (
        NotificationStatus.FAILED,
        "order or account not found",
        0,
        None,
    )

    assert await send_notification(mailing, order_id, "order.placed") is None
    assert smtp.recorder.for_order(order_id) == []


async def test_a_retry_for_an_order_gone_since_marks_its_row_failed(mailing, sessionmaker, smtp):
    order_id = uuid.uuid4().hex
    await add_ledger_row(
        sessionmaker, order_id, status=NotificationStatus.PENDING, attempts=1, last_error="421 try later"
    )

    assert await send_notification(mailing, order_id, "order.placed") is None
    entry = await ledger(sessionmaker, order_id)
    assert (entry.status, entry.last_error, entry.attempts) == (
        NotificationStatus.FAILED,
        "order or account not found",
        1,
    )
    assert smtp.recorder.for_order(order_id) == []


async def test_an_order_without_lines_still_gets_its_email(mailing, sessionmaker, smtp):
    order_id = await make_order(sessionmaker, await make_account(sessionmaker), {})

    assert await send_notification(mailing, order_id, "order.placed") == NotificationStatus.SENT
    [message] = smtp.recorder.for_order(order_id)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.endswith(f"Order {order_id}\nTotal: 0.00 USD\n")


async def test_the_sent_row_names_the_recipient_and_the_time(mailing, sessionmaker, smtp):
    order_id = await placed(mailing, sessionmaker)
    before = utcnow()

    assert await send_notification(mailing, order_id, "order.placed") == NotificationStatus.SENT
    entry = await ledger(sessionmaker, order_id)
    assert (entry.status, entry.attempts, entry.claimed_until, entry.last_error) == (
        NotificationStatus.SENT,
        1,
        None,
        None,
    )
    assert entry.recipient == await recipient_of(sessionmaker, order_id)
    assert entry.sent_at >= before
    [message] = smtp.recorder.for_order(order_id)
    assert message["To"] == entry.recipient


async def test_deliveries_racing_for_a_lapsed_claim_send_once_and_count_one_attempt(
    mailing, sessionmaker, smtp
):
    order_id = await placed(mailing, sessionmaker)
    await add_ledger_row(
        sessionmaker,
        order_id,
        status=NotificationStatus.SENDING,
        attempts=1,
        claimed_until=utcnow() - timedelta(seconds=1),
    )

    results = await asyncio.gather(
        *(send_notification(mailing, order_id, "order.placed") for _ in range(4)), return_exceptions=True
    )

    assert results.count(NotificationStatus.SENT) == 1, results
    assert all(
        r == NotificationStatus.SENT or r is None or isinstance(r, ClaimedElsewhere) for r in results
    ), results
    assert len(smtp.recorder.for_order(order_id)) == 1
    entry = await ledger(sessionmaker, order_id)
    assert (entry.status, entry.attempts) == (NotificationStatus.SENT, 2)


def before_taking(monkeypatch, competitor):
    """Runs ``competitor`` (another delivery's committed write) between a delivery's read and its claim."""
    take = notify_module._take
    calls = []

    async def interleaved(*args, **kwargs):
        if not calls:
            await competitor()
        calls.append(args)
        return await take(*args, **kwargs)

    monkeypatch.setattr(notify_module, "_take", interleaved)
    return calls


async def test_a_delivery_losing_the_race_to_create_the_row_leaves_it_to_the_winner(
    mailing, sessionmaker, smtp, monkeypatch
):
    order_id = await placed(mailing, sessionmaker)
    until = utcnow() + timedelta(seconds=40)
    calls = before_taking(
        monkeypatch,
        lambda: add_ledger_row(
            sessionmaker, order_id, status=NotificationStatus.SENDING, attempts=1, claimed_until=until
        ),
    )

    # Its INSERT meets the winner's row (duplicate key): it reads it and comes back after the claim.
    with pytest.raises(ClaimedElsewhere) as retry:
        await send_notification(mailing, order_id, "order.placed")
    assert 35_000 <= retry.value.delay <= 42_000
    assert len(calls) == 1
    assert smtp.recorder.for_order(order_id) == []
    entry = await ledger(sessionmaker, order_id)
    assert (entry.status, entry.attempts, entry.claimed_until) == (NotificationStatus.SENDING, 1, until)


async def test_a_delivery_losing_the_race_to_take_a_free_row_leaves_it_to_the_winner(
    mailing, sessionmaker, smtp, monkeypatch
):
    order_id = await placed(mailing, sessionmaker)
    await add_ledger_row(
        sessionmaker, order_id, status=NotificationStatus.PENDING, attempts=1, last_error="421 try later"
    )
    until = utcnow() + timedelta(seconds=40)

    async def winner_takes_it():
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Notification)
                .where(Notification.order_id == order_id)
                .values(status=NotificationStatus.SENDING, claimed_until=until, attempts=2)
            )

    calls = before_taking(monkeypatch, winner_takes_it)

    # Its conditional UPDATE finds the row claimed (no row changed): it reads it and comes back later.
    with pytest.raises(ClaimedElsewhere):
        await send_notification(mailing, order_id, "order.placed")
    assert len(calls) == 1
    assert smtp.recorder.for_order(order_id) == []
    entry = await ledger(sessionmaker, order_id)
    assert (entry.status, entry.attempts, entry.claimed_until) == (NotificationStatus.SENDING, 2, until)
