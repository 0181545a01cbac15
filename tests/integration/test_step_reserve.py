"""reserve against the real database: all or nothing, idempotent, safe under races."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from actors.reserve import reserve_stock
from models.tables import OutboxMessage, ReservedStock
from tests.support.factories import (
    available,
    load_order,
    make_account,
    make_item,
    make_order,
    unique,
)
from tests.support.scenarios import assert_invariants


async def outbox_rows(sessionmaker, order_id: str, actor: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.order_id == order_id, OutboxMessage.actor_name == actor)
        )


async def test_reserve_holds_every_line_and_enqueues_pay(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    shirt, mug = await make_item(sessionmaker, stock=5), await make_item(sessionmaker, stock=3)
    order_id = await make_order(sessionmaker, account, {shirt: 2, mug: 3})

    assert await reserve_stock(runtime, order_id) == "AWAITING_PAYMENT"

    order = await load_order(sessionmaker, order_id)
    assert order.status == "AWAITING_PAYMENT"
    assert {(h.sku, h.quantity, h.state) for h in order.holds} == {(shirt, 2, "HELD"), (mug, 3, "HELD")}
    assert order.hold_expires_at is not None
    assert all(h.expires_at == order.hold_expires_at for h in order.holds)
    assert (await available(sessionmaker, shirt), await available(sessionmaker, mug)) == (3, 0)
    assert await outbox_rows(sessionmaker, order_id, "pay") == 1
    assert [h.status for h in order.history] == ["PENDING", "AWAITING_PAYMENT"]


async def test_reserve_delivered_twice_holds_once(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=5)
    order_id = await make_order(sessionmaker, account, {sku: 2})

    await reserve_stock(runtime, order_id)
    assert await reserve_stock(runtime, order_id) == "AWAITING_PAYMENT"

    order = await load_order(sessionmaker, order_id)
    assert len(order.holds) == 1
    assert await available(sessionmaker, sku) == 3
    assert await outbox_rows(sessionmaker, order_id, "pay") == 1


async def test_reserve_delivered_twice_at_the_same_moment_holds_once(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=5)
    order_id = await make_order(sessionmaker, account, {sku: 2})

    results = await asyncio.gather(*(reserve_stock(runtime, order_id) for _ in range(4)))

    assert set(results) == {"AWAITING_PAYMENT"}
    order = await load_order(sessionmaker, order_id)
    assert len(order.holds) == 1 and [h.status for h in order.history].count("AWAITING_PAYMENT") == 1
    assert await available(sessionmaker, sku) == 3
    assert await outbox_rows(sessionmaker, order_id, "pay") == 1


async def test_short_stock_rejects_and_takes_nothing(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    # SKU order decides which line is taken first; the short one comes second.
    plenty = await make_item(sessionmaker, stock=10, sku=unique("A"))
    scarce = await make_item(sessionmaker, stock=1, sku=unique("Z"))
    order_id = await make_order(sessionmaker, account, {plenty: 4, scarce: 2})

    assert await reserve_stock(runtime, order_id) == "REJECTED"

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason) == ("REJECTED", "out_of_stock")
    assert order.holds == []
    # The first line was taken before the second came up short: the savepoint gave it back.
    assert (await available(sessionmaker, plenty), await available(sessionmaker, scarce)) == (10, 1)
    assert await outbox_rows(sessionmaker, order_id, "pay") == 0


async def test_unknown_sku_rejects_as_unknown_item(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    known = await make_item(sessionmaker, stock=10)
    order_id = await make_order(sessionmaker, account, {known: 1, "NO-SUCH-SKU": 1})

    await reserve_stock(runtime, order_id)

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason) == ("REJECTED", "unknown_item")
    assert await available(sessionmaker, known) == 10


async def test_many_orders_racing_for_few_units_never_oversell(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=5)
    order_ids = [await make_order(sessionmaker, account, {sku: 1}) for _ in range(20)]

    results = await asyncio.gather(*(reserve_stock(runtime, order_id) for order_id in order_ids))

    assert results.count("AWAITING_PAYMENT") == 5 and results.count("REJECTED") == 15
    assert await available(sessionmaker, sku) == 0
    async with sessionmaker() as session:
        held = await session.scalar(select(func.sum(ReservedStock.quantity)).where(ReservedStock.sku == sku))
        assert held == 5
    await assert_invariants(sessionmaker)
