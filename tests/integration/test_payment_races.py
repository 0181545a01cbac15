"""Payment success against expiry and cancellation: every interleaving ends in one consistent state."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import select

from actors.expire import expire_hold
from actors.refund import refund_payment
from actors.settle import settle_payment
from actors.void import void_payment
from models.tables import OutboxMessage
from tests.support.factories import available, load_order
from tests.support.scenarios import (
    assert_invariants,
    awaiting_payment,
    make_hold_due,
    provider,
    provider_event,
)


def with_policy(runtime, policy: str):
    return dataclasses.replace(
        runtime, settings=dataclasses.replace(runtime.settings, late_payment_policy=policy)
    )


async def run_follow_ups(runtime, sessionmaker, order_id: str) -> None:
    """Deliver the void/refund messages the steps enqueued, as the worker would."""
    async with sessionmaker() as session:
        messages = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.order_id == order_id, OutboxMessage.actor_name.in_(["void", "refund"])
                )
            )
        ).all()
    for message in messages:
        step = void_payment if message.actor_name == "void" else refund_payment
        await step(runtime, **message.kwargs)


async def approve_at_provider(psp_url: str, sessionmaker, order_id: str) -> None:
    order = await load_order(sessionmaker, order_id)
    status, body = await provider(psp_url, "POST", f"/checkout/{order.payment.provider_payment_id}/approve")
    assert status == 200, body


async def charges_and_refunds(psp_url: str, order_id: str) -> tuple[int, int]:
    _, payments = await provider(psp_url, "GET", "/v1/payments", order_id=order_id)
    succeeded = [p for p in payments["data"] if p["status"] == "succeeded"]
    refunds = 0
    for payment in succeeded:
        _, found = await provider(psp_url, "GET", "/v1/refunds", payment_id=payment["id"])
        refunds += len(found["data"])
    return len(succeeded), refunds


async def test_success_then_expiry_keeps_the_order_placed(runtime, sessionmaker, psp_url):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)
    await approve_at_provider(psp_url, sessionmaker, order_id)
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)
    await make_hold_due(sessionmaker, order_id)

    assert await expire_hold(runtime, order_id) == "PLACED"

    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED" and {h.state for h in order.holds} == {"COMMITTED"}
    assert await available(sessionmaker, sku) == 3
    assert await charges_and_refunds(psp_url, order_id) == (1, 0)
    await assert_invariants(sessionmaker)


async def test_expiry_then_late_success_reinstates_when_stock_allows(runtime, sessionmaker, psp_url):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)
    await make_hold_due(sessionmaker, order_id)
    await expire_hold(runtime, order_id)
    await approve_at_provider(psp_url, sessionmaker, order_id)  # paid just before; webhook late

    outcome = await settle_payment(
        runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id
    )

    assert outcome == "late_payment_reinstated"
    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED" and order.payment.status == "SUCCEEDED"
    assert [(h.status, h.reason) for h in order.history][-2:] == [
        ("CANCELLED", "payment_timeout"),
        ("PLACED", None),
    ]
    assert order.history[-1].note == "late payment: reinstated"
    assert await available(sessionmaker, sku) == 3
    await run_follow_ups(runtime, sessionmaker, order_id)
    assert await charges_and_refunds(psp_url, order_id) == (1, 0)
    await assert_invariants(sessionmaker)


async def test_expiry_then_late_success_refunds_when_the_stock_is_gone(runtime, sessionmaker, psp_url):
    order_id, sku = await awaiting_payment(runtime, sessionmaker, stock=2, quantity=2)
    await make_hold_due(sessionmaker, order_id)
    await expire_hold(runtime, order_id)
    await _rival_takes(runtime, sessionmaker, sku, quantity=2)
    await approve_at_provider(psp_url, sessionmaker, order_id)

    outcome = await settle_payment(
        runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id
    )

    assert outcome == "late_payment_refunding"
    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason, order.payment.status) == (
        "CANCELLED",
        "payment_timeout",
        "REFUND_PENDING",
    )
    assert order.history[-2].note.startswith("late payment: refunded (out_of_stock")
    assert order.history[-1].note == f"refund of {order.payment.amount_cents} cents requested"
    await run_follow_ups(runtime, sessionmaker, order_id)
    assert await charges_and_refunds(psp_url, order_id) == (1, 1)
    assert await available(sessionmaker, sku) == 0
    await assert_invariants(sessionmaker)


async def _rival_takes(runtime, sessionmaker, sku: str, quantity: int):
    from actors.reserve import reserve_stock
    from tests.support.factories import make_account, make_order

    rival = await make_order(sessionmaker, await make_account(sessionmaker), {sku: quantity})
    assert await reserve_stock(runtime, rival) == "AWAITING_PAYMENT"
    return rival, sku


async def test_refund_policy_refunds_a_late_payment_even_with_stock(runtime, sessionmaker, psp_url):
    refunding = with_policy(runtime, "refund")
    order_id, sku = await awaiting_payment(refunding, sessionmaker)
    await make_hold_due(sessionmaker, order_id)
    await expire_hold(refunding, order_id)
    await approve_at_provider(psp_url, sessionmaker, order_id)

    outcome = await settle_payment(
        refunding, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id
    )

    assert outcome == "late_payment_refunding"
    assert (await load_order(sessionmaker, order_id)).status == "CANCELLED"
    await run_follow_ups(refunding, sessionmaker, order_id)
    assert await charges_and_refunds(psp_url, order_id) == (1, 1)
    assert await available(sessionmaker, sku) == 5
    await assert_invariants(sessionmaker)


async def test_failure_webhook_after_cancel_changes_nothing(runtime, sessionmaker):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)
    await make_hold_due(sessionmaker, order_id)
    await expire_hold(runtime, order_id)

    outcome = await settle_payment(
        runtime, await provider_event(sessionmaker, order_id, "payment.failed"), order_id
    )

    assert outcome == "ignored_in_cancelled"
    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason, order.payment.status) == ("CANCELLED", "payment_timeout", "CANCELLED")
    assert await available(sessionmaker, sku) == 5


@pytest.mark.parametrize("policy", ["reinstate", "refund"])
async def test_success_and_expiry_at_the_same_moment_end_consistent(runtime, sessionmaker, psp_url, policy):
    runtime = with_policy(runtime, policy)
    for _ in range(6):
        order_id, sku = await awaiting_payment(runtime, sessionmaker)
        await make_hold_due(sessionmaker, order_id)
        await approve_at_provider(psp_url, sessionmaker, order_id)
        event = await provider_event(sessionmaker, order_id, "payment.succeeded")

        await asyncio.gather(expire_hold(runtime, order_id), settle_payment(runtime, event, order_id))
        await run_follow_ups(runtime, sessionmaker, order_id)

        order = await load_order(sessionmaker, order_id)
        charged, refunded = await charges_and_refunds(psp_url, order_id)
        assert charged == 1
        if order.status == "PLACED":  # settled first, or expired first and reinstated
            assert refunded == 0 and await available(sessionmaker, sku) == 3
            assert policy == "reinstate" or order.history[-2].status != "CANCELLED"
        else:
            assert (order.status, order.reason, order.payment.status) == (
                "CANCELLED",
                "payment_timeout",
                "REFUND_PENDING",
            )
            assert policy == "refund" and refunded == 1 and await available(sessionmaker, sku) == 5
        await assert_invariants(sessionmaker)


async def test_flash_of_expiries_and_payments_conserves_stock(runtime, sessionmaker, psp_url):
    orders = [await awaiting_payment(runtime, sessionmaker, stock=3, quantity=1) for _ in range(8)]
    for order_id, _ in orders:
        await make_hold_due(sessionmaker, order_id)
    paid = orders[::2]
    for order_id, _ in paid:
        await approve_at_provider(psp_url, sessionmaker, order_id)
    events = {
        order_id: await provider_event(sessionmaker, order_id, "payment.succeeded") for order_id, _ in paid
    }

    await asyncio.gather(
        *(expire_hold(runtime, order_id) for order_id, _ in orders),
        *(settle_payment(runtime, event, order_id) for order_id, event in events.items()),
    )

    for order_id, sku in orders:
        order = await load_order(sessionmaker, order_id)
        expected = "PLACED" if order_id in events else "CANCELLED"
        assert order.status == expected
        assert await available(sessionmaker, sku) == (2 if expected == "PLACED" else 3)
    await assert_invariants(sessionmaker)
