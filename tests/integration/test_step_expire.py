"""expire against the real database: due holds are released once; early or late runs do nothing."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from actors.expire import HOP_MS, expire_hold
from actors.reserve import reserve_stock
from actors.void import void_payment
from models.tables import OutboxMessage
from tests.support.factories import (
    available,
    load_order,
    make_account,
    make_item,
    make_order,
)
from tests.support.scenarios import (
    assert_invariants,
    awaiting_payment,
    make_hold_due,
    provider,
)


async def expire_messages(sessionmaker, order_id: str) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "expire")
                    .order_by(OutboxMessage.created_at)
                )
            ).all()
        )


async def test_reserve_schedules_expire_on_its_own_queue_with_the_hold_as_delay(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=3)
    order_id = await make_order(sessionmaker, account, {sku: 1})

    await reserve_stock(runtime, order_id)

    [message] = await expire_messages(sessionmaker, order_id)
    assert message.queue_name == "expire"
    # HOLD_SECONDS is 60 in the test runtime.
    assert 59_000 <= message.delay_ms <= 60_000


async def test_due_hold_is_cancelled_released_and_voided_at_the_provider(runtime, sessionmaker, psp_url):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)
    await make_hold_due(sessionmaker, order_id)

    assert await expire_hold(runtime, order_id) == "CANCELLED"

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason) == ("CANCELLED", "payment_timeout")
    assert order.payment.status == "CANCELLED"
    assert {h.state for h in order.holds} == {"RELEASED"} and all(h.released_at for h in order.holds)
    assert await available(sessionmaker, sku) == 5
    async with sessionmaker() as session:
        void = await session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "void"
            )
        )
    assert void is not None
    assert await void_payment(runtime, **void.kwargs) == "cancelled"
    _, at_provider = await provider(psp_url, "GET", f"/v1/payments/{order.payment.provider_payment_id}")
    assert at_provider["status"] == "cancelled"
    await assert_invariants(sessionmaker)


async def test_expire_before_the_hold_is_due_re_sends_itself(runtime, sessionmaker):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)

    assert await expire_hold(runtime, order_id) == "AWAITING_PAYMENT"

    messages = await expire_messages(sessionmaker, order_id)
    assert len(messages) == 2 and 0 < messages[-1].delay_ms <= 60_000
    assert await available(sessionmaker, sku) == 3


async def test_a_hold_longer_than_one_hop_travels_in_hops(runtime, sessionmaker):
    import dataclasses

    long_hold = dataclasses.replace(
        runtime, settings=dataclasses.replace(runtime.settings, hold_seconds=3600)
    )
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=3)
    order_id = await make_order(sessionmaker, account, {sku: 1})

    await reserve_stock(long_hold, order_id)
    await expire_hold(long_hold, order_id)  # the first hop arrives: 50 minutes still to go

    assert [m.delay_ms for m in await expire_messages(sessionmaker, order_id)] == [HOP_MS, HOP_MS]
    assert (await load_order(sessionmaker, order_id)).status == "AWAITING_PAYMENT"


async def test_expire_delivered_twice_or_at_once_releases_once(runtime, sessionmaker):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)
    await make_hold_due(sessionmaker, order_id)

    results = await asyncio.gather(*(expire_hold(runtime, order_id) for _ in range(3)))
    again = await expire_hold(runtime, order_id)

    assert set(results) == {"CANCELLED"} and again == "CANCELLED"
    order = await load_order(sessionmaker, order_id)
    assert [h.status for h in order.history].count("CANCELLED") == 1
    assert await available(sessionmaker, sku) == 5
    await assert_invariants(sessionmaker)
