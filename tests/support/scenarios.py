"""Orders brought to a given point by running the real steps, for step-level tests."""

from __future__ import annotations

import uuid

import aiohttp
from sqlalchemy import update

from actors.pay import request_payment
from actors.reserve import reserve_stock
from actors.settle import settle_payment
from models.clock import utcnow
from models.invariants import invariant_violations
from models.tables import Order, ReservedStock, WebhookEvent
from tests.support.factories import load_order, make_account, make_item, make_order


async def awaiting_payment(
    runtime,
    sessionmaker,
    *,
    stock: int = 5,
    quantity: int = 2,
    token: str = "pm_card_no_response",
    method: str = "token",
):
    """An order holding ``quantity`` of a new SKU, its payment created (pending) at the provider.

    Returns once the steps' messages are out: the publisher sends (and logs) in the background,
    which would otherwise interleave with what the test does next.
    """
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=stock)
    order_id = await make_order(sessionmaker, account, {sku: quantity}, token=token, method=method)
    await reserve_stock(runtime, order_id)
    await request_payment(runtime, order_id)
    await runtime.publisher.flush()
    return order_id, sku


async def placed_order(runtime, sessionmaker) -> str:
    """An order PLACED by the provider's success webhook, settled by the real step."""
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)
    await runtime.publisher.flush()
    return order_id


async def make_hold_due(sessionmaker, order_id: str, seconds_ago: float = 1.0) -> None:
    """Move the order's hold expiry into the past, as if its time had run out."""
    from datetime import timedelta

    past = utcnow() - timedelta(seconds=seconds_ago)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Order).where(Order.id == order_id).values(hold_expires_at=past))
        await session.execute(
            update(ReservedStock).where(ReservedStock.order_id == order_id).values(expires_at=past)
        )


async def provider_event(sessionmaker, order_id: str, event_type: str, **data) -> str:
    """Record an inbound provider event for the order's payment, as the gateway does."""
    order = await load_order(sessionmaker, order_id)
    event_id = f"evt_{uuid.uuid4().hex}"
    payload_data = {
        "payment_id": order.payment.provider_payment_id or f"pay_{uuid.uuid4().hex}",
        "amount_cents": order.total_cents,
        "currency": "USD",
        "metadata": {"order_id": order_id, "payment_id": order.payment.id},
        **data,
    }
    async with sessionmaker() as session, session.begin():
        session.add(
            WebhookEvent(
                id=event_id,
                type=event_type,
                payload={"id": event_id, "type": event_type, "created": 0, "data": payload_data},
            )
        )
    return event_id


async def provider(psp_url: str, method: str, path: str, **params) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as client:
        async with client.request(method, psp_url + path, params=params) as response:
            return response.status, await response.json()


async def assert_invariants(sessionmaker) -> None:
    async with sessionmaker() as session:
        assert await invariant_violations(session) == []
