"""settle against the real database: each payment result applied once, races end consistent.

Orders are paid at the sandbox provider as `pay` pays them, so settle can confirm each event
with the provider's own record (tests/integration/test_webhook_agreement.py covers events that
disagree).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from actors.settle import SettleOutcome, settle_payment
from models.tables import WebhookEvent
from tests.support.factories import available, load_order
from tests.support.scenarios import assert_invariants, awaiting_payment, provider_event


async def paid_order(runtime, sessionmaker, token: str = "pm_card_ok"):
    """An order holding 2 of 5 units, its payment decided at the provider by ``token``."""
    return await awaiting_payment(runtime, sessionmaker, token=token)


async def test_success_places_order_and_commits_holds(runtime, sessionmaker):
    order_id, sku = await paid_order(runtime, sessionmaker)
    event = await provider_event(sessionmaker, order_id, "payment.succeeded")

    assert await settle_payment(runtime, event, order_id) == SettleOutcome.PLACED

    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED"
    assert order.payment.status == "SUCCEEDED" and order.payment.provider_payment_id is not None
    assert {h.state for h in order.holds} == {"COMMITTED"}
    assert await available(sessionmaker, sku) == 3
    await assert_invariants(sessionmaker)


async def test_same_event_delivered_twice_or_at_once_applies_once(runtime, sessionmaker):
    order_id, _ = await paid_order(runtime, sessionmaker)
    event = await provider_event(sessionmaker, order_id, "payment.succeeded")

    outcomes = await asyncio.gather(*(settle_payment(runtime, event, order_id) for _ in range(3)))
    again = await settle_payment(runtime, event, order_id)

    assert set(outcomes) == {SettleOutcome.PLACED} and again == SettleOutcome.PLACED
    order = await load_order(sessionmaker, order_id)
    assert [h.status for h in order.history].count("PLACED") == 1


async def test_two_success_events_racing_place_once(runtime, sessionmaker):
    order_id, sku = await paid_order(runtime, sessionmaker)
    events = [await provider_event(sessionmaker, order_id, "payment.succeeded") for _ in range(2)]

    outcomes = await asyncio.gather(*(settle_payment(runtime, e, order_id) for e in events))

    assert sorted(outcomes) == [SettleOutcome.ALREADY_PLACED, SettleOutcome.PLACED]
    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED" and [h.status for h in order.history].count("PLACED") == 1
    assert await available(sessionmaker, sku) == 3
    await assert_invariants(sessionmaker)


async def test_failure_cancels_and_gives_stock_back(runtime, sessionmaker):
    order_id, sku = await paid_order(runtime, sessionmaker, token="pm_card_declined")
    event = await provider_event(sessionmaker, order_id, "payment.failed")

    assert await settle_payment(runtime, event, order_id) == SettleOutcome.CANCELLED_PAYMENT_FAILED
    assert await settle_payment(runtime, event, order_id) == SettleOutcome.CANCELLED_PAYMENT_FAILED

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason) == ("CANCELLED", "payment_failed")
    assert order.payment.status == "FAILED"
    assert {h.state for h in order.holds} == {"RELEASED"}
    assert await available(sessionmaker, sku) == 5
    await assert_invariants(sessionmaker)


async def test_failure_after_success_changes_nothing(runtime, sessionmaker):
    order_id, sku = await paid_order(runtime, sessionmaker)
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)

    outcome = await settle_payment(
        runtime, await provider_event(sessionmaker, order_id, "payment.failed"), order_id
    )

    assert outcome == SettleOutcome.IGNORED_IN_PLACED
    order = await load_order(sessionmaker, order_id)
    assert order.status == "PLACED" and order.payment.status == "SUCCEEDED"
    assert await available(sessionmaker, sku) == 3


@pytest.mark.parametrize(
    "token, outcome, stock_left",
    [
        ("pm_card_ok", SettleOutcome.PLACED, 3),
        ("pm_card_declined", SettleOutcome.CANCELLED_PAYMENT_FAILED, 5),
    ],
)
async def test_success_and_failure_racing_end_as_the_provider_decided(
    runtime, sessionmaker, token, outcome, stock_left
):
    for _ in range(5):
        order_id, sku = await paid_order(runtime, sessionmaker, token=token)
        ok = await provider_event(sessionmaker, order_id, "payment.succeeded")
        failed = await provider_event(sessionmaker, order_id, "payment.failed")

        outcomes = await asyncio.gather(
            settle_payment(runtime, ok, order_id), settle_payment(runtime, failed, order_id)
        )

        # The event the provider contradicts is a mismatch if it comes first, ignored if second.
        order = await load_order(sessionmaker, order_id)
        assert outcome in outcomes and outcomes.count(outcome) == 1
        assert set(outcomes) - {outcome} <= {SettleOutcome.MISMATCH, SettleOutcome.ignored_in(order.status)}
        assert order.status == ("PLACED" if token == "pm_card_ok" else "CANCELLED")
        assert await available(sessionmaker, sku) == stock_left
        await assert_invariants(sessionmaker)


async def test_event_for_unknown_payment_is_recorded_and_ignored(runtime, sessionmaker):
    event_id = f"evt_{uuid.uuid4().hex}"
    async with sessionmaker() as session, session.begin():
        session.add(
            WebhookEvent(
                id=event_id,
                type="payment.succeeded",
                payload={
                    "id": event_id,
                    "type": "payment.succeeded",
                    "data": {"payment_id": "pay_nobody", "metadata": {}},
                },
            )
        )

    assert await settle_payment(runtime, event_id) == SettleOutcome.UNKNOWN_PAYMENT
    assert await settle_payment(runtime, event_id) == SettleOutcome.UNKNOWN_PAYMENT


async def test_success_after_failure_changes_nothing(runtime, sessionmaker):
    order_id, sku = await paid_order(runtime, sessionmaker, token="pm_card_declined")
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.failed"), order_id)

    outcome = await settle_payment(
        runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id
    )

    assert outcome == SettleOutcome.IGNORED_IN_CANCELLED
    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason, order.payment.status) == ("CANCELLED", "payment_failed", "FAILED")
    assert await available(sessionmaker, sku) == 5
