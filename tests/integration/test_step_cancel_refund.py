"""cancel and refund against the real database and the sandbox provider."""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy import delete, select
from structlog.testing import capture_logs

from actors.cancel import cancel_order
from actors.refund import refund_payment
from actors.settle import SettleOutcome, settle_payment
from models.tables import ARCHIVED_CHILDREN, Order, OutboxMessage
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
    provider,
    provider_event,
)


async def follow_ups(sessionmaker, order_id: str, actor: str) -> list[dict]:
    async with sessionmaker() as session:
        return [
            m.kwargs
            for m in (
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.order_id == order_id, OutboxMessage.actor_name == actor
                    )
                )
            ).all()
        ]


async def placed_order(runtime, sessionmaker, psp_url):
    """An order paid at the provider (pm_card_ok) and settled by its success webhook."""
    order_id, sku = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)
    assert (await load_order(sessionmaker, order_id)).status == "PLACED"
    return order_id, sku


async def test_cancel_before_reserve_cancels_without_touching_stock(runtime, sessionmaker):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=3)
    order_id = await make_order(sessionmaker, account, {sku: 1})

    assert await cancel_order(runtime, order_id, "customer_cancelled") == "CANCELLED"

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason, order.payment.status) == (
        "CANCELLED",
        "customer_cancelled",
        "CANCELLED",
    )
    assert await available(sessionmaker, sku) == 3


async def test_cancel_before_payment_releases_stock_and_voids(runtime, sessionmaker):
    order_id, sku = await awaiting_payment(runtime, sessionmaker)

    assert await cancel_order(runtime, order_id, "admin_cancelled") == "CANCELLED"

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason) == ("CANCELLED", "admin_cancelled")
    assert await available(sessionmaker, sku) == 5
    assert await follow_ups(sessionmaker, order_id, "void") == [
        {"order_id": order_id, "payment_id": order.payment.id}
    ]
    await assert_invariants(sessionmaker)


async def test_cancel_after_payment_refunds_once_and_gives_stock_back(runtime, sessionmaker, psp_url):
    order_id, sku = await placed_order(runtime, sessionmaker, psp_url)

    assert await cancel_order(runtime, order_id, "customer_cancelled") == "CANCELLED"
    order = await load_order(sessionmaker, order_id)
    assert order.payment.status == "REFUND_PENDING"
    assert await available(sessionmaker, sku) == 5
    [refund] = await follow_ups(sessionmaker, order_id, "refund")

    # The refund step delivered three times, two of them at once: one refund at the provider.
    results = await asyncio.gather(refund_payment(runtime, **refund), refund_payment(runtime, **refund))
    await refund_payment(runtime, **refund)
    _, refunds = await provider(psp_url, "GET", "/v1/refunds", payment_id=order.payment.provider_payment_id)
    assert len(refunds["data"]) == 1 and refunds["data"][0]["id"] in results

    event = await provider_event(
        sessionmaker, order_id, "refund.succeeded", refund_id=refunds["data"][0]["id"]
    )
    assert await settle_payment(runtime, event, order_id) == SettleOutcome.REFUNDED
    # The provider sends the same refund's event again, under a new event id.
    again = await provider_event(
        sessionmaker, order_id, "refund.succeeded", refund_id=refunds["data"][0]["id"]
    )
    assert await settle_payment(runtime, again, order_id) == SettleOutcome.ALREADY_REFUNDED
    order = await load_order(sessionmaker, order_id)
    assert order.payment.status == "REFUNDED"
    assert order.payment.refunded_cents == order.payment.amount_cents
    assert order.history[-1].note == f"refund of {order.payment.amount_cents} cents confirmed"
    await assert_invariants(sessionmaker)


async def test_cancelling_twice_or_at_once_changes_nothing_more(runtime, sessionmaker, psp_url):
    order_id, sku = await placed_order(runtime, sessionmaker, psp_url)

    await asyncio.gather(*(cancel_order(runtime, order_id, "customer_cancelled") for _ in range(3)))
    await cancel_order(runtime, order_id, "admin_cancelled")

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason) == ("CANCELLED", "customer_cancelled")
    # One move to CANCELLED; the refund it started is a note that repeats the status.
    assert [h.status for h in order.history if h.note is None].count("CANCELLED") == 1
    assert len(await follow_ups(sessionmaker, order_id, "refund")) == 1
    assert await available(sessionmaker, sku) == 5
    await assert_invariants(sessionmaker)


async def test_shipped_order_is_not_cancelled(runtime, sessionmaker, psp_url):
    from models.repository import lock_order
    from models.state import OrderStatus

    order_id, sku = await placed_order(runtime, sessionmaker, psp_url)
    async with runtime.uow() as uow:
        uow.move(await lock_order(uow.session, order_id), OrderStatus.SHIPPED)
        await uow.commit()

    assert await cancel_order(runtime, order_id, "customer_cancelled") == "SHIPPED"
    assert await available(sessionmaker, sku) == 3
    assert await follow_ups(sessionmaker, order_id, "refund") == []


async def test_refund_for_an_order_that_does_not_exist_does_nothing(runtime):
    with capture_logs() as logs:
        assert await refund_payment(runtime, order_id="no-such-order", payment_id="no-such-payment") is None
    assert [entry["event"] for entry in logs if entry["event"].startswith("refund.")] == [
        "refund.not_applicable"
    ]


class DeletesTheOrderWhileRefunding:
    """The provider, with the order deleted while it is being asked for the refund."""

    def __init__(self, psp, sessionmaker, order_id: str):
        self._psp, self._sessionmaker, self._order_id = psp, sessionmaker, order_id

    async def refund(self, **request):
        refund = await self._psp.refund(**request)
        async with self._sessionmaker() as session, session.begin():
            for hot, _ in ARCHIVED_CHILDREN:
                await session.execute(delete(hot).where(hot.c.order_id == self._order_id))
            await session.execute(delete(Order).where(Order.id == self._order_id))
        return refund


async def test_refund_whose_order_disappears_meanwhile_returns_without_raising(
    runtime, sessionmaker, psp_url
):
    order_id, _ = await placed_order(runtime, sessionmaker, psp_url)
    await cancel_order(runtime, order_id, "customer_cancelled")
    [refund] = await follow_ups(sessionmaker, order_id, "refund")
    vanishing = dataclasses.replace(
        runtime, psp=DeletesTheOrderWhileRefunding(runtime.psp, sessionmaker, order_id)
    )

    with capture_logs() as logs:
        refund_id = await refund_payment(vanishing, **refund)

    assert refund_id is not None
    mine = [(entry["event"], entry["log_level"]) for entry in logs if entry["event"].startswith("refund.")]
    assert mine == [("refund.payment_gone", "warning")]
    assert (await load_order(sessionmaker, order_id)) is None
