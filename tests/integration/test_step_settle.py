"""settle against the real database: each payment result applied once, races end consistent."""

from __future__ import annotations

import asyncio
import uuid

from actors.reserve import reserve_stock
from actors.settle import settle_payment
from models.invariants import invariant_violations
from models.tables import WebhookEvent
from tests.support.factories import (
    available,
    load_order,
    make_account,
    make_item,
    make_order,
)


async def held_order(runtime, sessionmaker, stock: int = 5, quantity: int = 2):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=stock)
    order_id = await make_order(sessionmaker, account, {sku: quantity})
    await reserve_stock(runtime, order_id)
    return order_id, sku


async def webhook(sessionmaker, order_id: str, event_type: str, provider_payment_id: str = "pay_test") -> str:
    """Record an inbound provider event as the gateway does."""
    event_id = f"evt_{uuid.uuid4().hex}"
    order = await load_order(sessionmaker, order_id)
    async with sessionmaker() as session, session.begin():
        session.add(WebhookEvent(id=event_id, type=event_type, payload={
            "id": event_id, "type": event_type, "created": 0,
            "data": {"payment_id": provider_payment_id, "amount_cents": order.total_cents, "currency": "USD",
                     "metadata": {"order_id": order_id, "payment_id": order.payment.id}}}))
    return event_id


async def assert_invariants(sessionmaker):
    async with sessionmaker() as session:
        assert await invariant_violations(session) == []


async def test_success_places_order_and_commits_holds(runtime, sessionmaker):
    order_id, sku = await held_order(runtime, sessionmaker)
    event = await webhook(sessionmaker, order_id, "payment.succeeded", f"pay_{uuid.uuid4().hex}")

    assert await settle_payment(runtime, event, order_id) == "placed"

    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED"
    assert order.payment.status == "SUCCEEDED" and order.payment.provider_payment_id is not None
    assert {h.state for h in order.holds} == {"COMMITTED"}
    assert await available(sessionmaker, sku) == 3
    await assert_invariants(sessionmaker)


async def test_same_event_delivered_twice_or_at_once_applies_once(runtime, sessionmaker):
    order_id, _ = await held_order(runtime, sessionmaker)
    event = await webhook(sessionmaker, order_id, "payment.succeeded", f"pay_{uuid.uuid4().hex}")

    outcomes = await asyncio.gather(*(settle_payment(runtime, event, order_id) for _ in range(3)))
    again = await settle_payment(runtime, event, order_id)

    assert set(outcomes) == {"placed"} and again == "placed"
    order = await load_order(sessionmaker, order_id)
    assert [h.status for h in order.history].count("PLACED") == 1


async def test_two_success_events_racing_place_once(runtime, sessionmaker):
    order_id, sku = await held_order(runtime, sessionmaker)
    provider_id = f"pay_{uuid.uuid4().hex}"
    events = [await webhook(sessionmaker, order_id, "payment.succeeded", provider_id) for _ in range(2)]

    outcomes = await asyncio.gather(*(settle_payment(runtime, e, order_id) for e in events))

    assert sorted(outcomes) == ["already_placed", "placed"]
    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED" and [h.status for h in order.history].count("PLACED") == 1
    assert await available(sessionmaker, sku) == 3
    await assert_invariants(sessionmaker)


async def test_failure_cancels_and_gives_stock_back(runtime, sessionmaker):
    order_id, sku = await held_order(runtime, sessionmaker)
    event = await webhook(sessionmaker, order_id, "payment.failed", f"pay_{uuid.uuid4().hex}")

    assert await settle_payment(runtime, event, order_id) == "cancelled_payment_failed"
    assert await settle_payment(runtime, event, order_id) == "cancelled_payment_failed"

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason) == ("CANCELLED", "payment_failed")
    assert order.payment.status == "FAILED"
    assert {h.state for h in order.holds} == {"RELEASED"}
    assert await available(sessionmaker, sku) == 5
    await assert_invariants(sessionmaker)


async def test_failure_after_success_changes_nothing(runtime, sessionmaker):
    order_id, sku = await held_order(runtime, sessionmaker)
    provider_id = f"pay_{uuid.uuid4().hex}"
    await settle_payment(runtime, await webhook(sessionmaker, order_id, "payment.succeeded", provider_id), order_id)

    outcome = await settle_payment(
        runtime, await webhook(sessionmaker, order_id, "payment.failed", provider_id), order_id)

    assert outcome == "ignored_in_placed"
    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED" and order.payment.status == "SUCCEEDED"
    assert await available(sessionmaker, sku) == 3


async def test_success_and_failure_racing_end_in_one_consistent_state(runtime, sessionmaker):
    for _ in range(5):
        order_id, sku = await held_order(runtime, sessionmaker)
        provider_id = f"pay_{uuid.uuid4().hex}"
        ok = await webhook(sessionmaker, order_id, "payment.succeeded", provider_id)
        failed = await webhook(sessionmaker, order_id, "payment.failed", provider_id)

        outcomes = set(await asyncio.gather(settle_payment(runtime, ok, order_id),
                                            settle_payment(runtime, failed, order_id)))

        order = await load_order(sessionmaker, order_id)
        if order.status == "PLACED":
            assert outcomes == {"placed", "ignored_in_placed"}
            assert await available(sessionmaker, sku) == 3
        else:
            assert (order.status, order.reason) == ("CANCELLED", "payment_failed")
            assert outcomes == {"cancelled_payment_failed", "ignored_in_cancelled"}
            assert await available(sessionmaker, sku) == 5
        await assert_invariants(sessionmaker)


async def test_event_for_unknown_payment_is_recorded_and_ignored(runtime, sessionmaker):
    event_id = f"evt_{uuid.uuid4().hex}"
    async with sessionmaker() as session, session.begin():
        session.add(WebhookEvent(id=event_id, type="payment.succeeded", payload={
            "id": event_id, "type": "payment.succeeded",
            "data": {"payment_id": "pay_nobody", "metadata": {}}}))

    assert await settle_payment(runtime, event_id) == "unknown_payment"
    assert await settle_payment(runtime, event_id) == "unknown_payment"


async def test_success_after_failure_changes_nothing(runtime, sessionmaker):
    order_id, sku = await held_order(runtime, sessionmaker)
    provider_id = f"pay_{uuid.uuid4().hex}"
    await settle_payment(runtime, await webhook(sessionmaker, order_id, "payment.failed", provider_id), order_id)

    outcome = await settle_payment(
        runtime, await webhook(sessionmaker, order_id, "payment.succeeded", provider_id), order_id)

    assert outcome == "ignored_in_cancelled"
    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason, order.payment.status) == ("CANCELLED", "payment_failed", "FAILED")
    assert await available(sessionmaker, sku) == 5
