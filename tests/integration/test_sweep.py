"""The backstop sweep finds what a lost message left undone; the invariant checker sees it too."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from actors.expire import expire_hold
from actors.refund import refund_payment
from actors.reserve import reserve_stock
from messaging.sweep import sweep
from models.clock import utcnow
from models.invariants import invariant_violations, overdue_orders
from models.refunds import start_refund
from models.tables import Notification, Order, OutboxMessage, Refund
from tests.support.factories import (
    available,
    load_order,
    make_account,
    make_item,
    make_order,
)
from tests.support.scenarios import awaiting_payment, make_hold_due, placed_order


async def enqueued(sessionmaker, order_id: str, actor: str) -> int:
    async with sessionmaker() as session:
        return len(
            (
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.order_id == order_id, OutboxMessage.actor_name == actor
                    )
                )
            ).all()
        )


async def test_hold_whose_expire_message_was_lost_is_expired_by_the_sweep(runtime, sessionmaker):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)
    await make_hold_due(sessionmaker, order_id, seconds_ago=120)
    before = await enqueued(sessionmaker, order_id, "expire")
    async with sessionmaker() as session:
        assert (order_id, "AWAITING_PAYMENT") in await overdue_orders(session, grace_seconds=60)
        assert any(
            order_id in line for line in await invariant_violations(session, deadline_grace_seconds=60)
        )

    report = await sweep(sessionmaker, runtime.publisher)

    assert report.counts["hold_overdue"] >= 1
    assert await enqueued(sessionmaker, order_id, "expire") == before + 1
    await expire_hold(runtime, order_id)
    assert (await load_order(sessionmaker, order_id)).status == "CANCELLED"
    assert await available(sessionmaker, sku) == 5
    async with sessionmaker() as session:
        assert (order_id, "AWAITING_PAYMENT") not in await overdue_orders(session, grace_seconds=60)


async def test_hold_just_due_is_left_to_its_own_message(runtime, sessionmaker):
    order_id, _ = await awaiting_payment(runtime, sessionmaker)
    await make_hold_due(sessionmaker, order_id, seconds_ago=1)
    before = await enqueued(sessionmaker, order_id, "expire")

    await sweep(sessionmaker, runtime.publisher)

    assert await enqueued(sessionmaker, order_id, "expire") == before


async def test_order_stuck_in_pending_gets_reserve_again(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=2)
    order_id = await make_order(sessionmaker, account, {sku: 1})
    long_ago = utcnow() - timedelta(minutes=10)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Order).where(Order.id == order_id).values(created_at=long_ago, updated_at=long_ago)
        )

    report = await sweep(sessionmaker, runtime.publisher)

    assert report.counts["pending_stuck"] >= 1
    assert await enqueued(sessionmaker, order_id, "reserve") == 1
    assert await reserve_stock(runtime, order_id) == "AWAITING_PAYMENT"


async def test_a_partial_refund_whose_message_was_lost_is_asked_for_by_the_sweep(runtime, sessionmaker):
    order_id = await placed_order(runtime, sessionmaker)
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        assert order is not None and order.payment is not None
        refund = await start_refund(uow, order, order.payment, reason="goodwill", amount_cents=300)
        await uow.commit()  # no `refund` message: as if it was lost
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Refund).where(Refund.id == refund.id).values(updated_at=utcnow() - timedelta(minutes=5))
        )

    await sweep(sessionmaker, runtime.publisher)

    async with sessionmaker() as session:
        [message] = (
            await session.scalars(
                select(OutboxMessage.kwargs).where(
                    OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "refund"
                )
            )
        ).all()
    assert message == {"order_id": order_id, "payment_id": order.payment.id, "refund_id": refund.id}
    provider_refund_id = await refund_payment(runtime, **message)
    async with sessionmaker() as session:
        assert (await session.get(Refund, refund.id)).provider_refund_id == provider_refund_id


async def test_an_abandoned_email_of_one_refund_is_sent_again_as_that_refund_s(runtime, sessionmaker):
    order_id = await placed_order(runtime, sessionmaker)
    async with sessionmaker() as session, session.begin():
        session.add(
            Notification(
                order_id=order_id,
                event="order.refunded:" + "f" * 32,
                status="SENDING",
                claimed_until=utcnow() - timedelta(minutes=5),
                attempts=1,
            )
        )

    await sweep(sessionmaker, runtime.publisher)

    async with sessionmaker() as session:
        sent_again = (
            await session.scalars(
                select(OutboxMessage.kwargs).where(
                    OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "notify"
                )
            )
        ).all()
    assert {"order_id": order_id, "event_type": "order.refunded", "occurrence": "f" * 32} in sent_again
