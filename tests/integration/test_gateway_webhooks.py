"""Provider webhooks through the gateway: verified, recorded once, handed to settle through the outbox."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from sqlalchemy import func, select

from actors.settle import settle_payment
from models.tables import OutboxMessage, WebhookEvent
from providers.webhook_signature import HEADER, sign
from tests.support.factories import load_order
from tests.support.polling import eventually
from tests.support.scenarios import awaiting_payment


def event(order_id: str, **changes) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "payment.succeeded",
        "created": int(time.time()),
        "data": {
            "payment_id": f"pay_{uuid.uuid4().hex[:24]}",
            "amount_cents": 4500,
            "currency": "USD",
            "metadata": {"order_id": order_id},
        },
        **changes,
    }


async def post_signed(client, secret: str, body: bytes, timestamp: int | None = None):
    return await client.post(
        "/payments/webhook",
        data=body,
        headers={HEADER: sign(secret, body, timestamp), "Content-Type": "application/json"},
    )


async def settle_rows(sessionmaker, order_id: str) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "settle"
                    )
                )
            ).all()
        )


async def test_signed_event_is_recorded_and_queued_for_settle(client, settings, sessionmaker):
    order_id = uuid.uuid4().hex
    payload = event(order_id)
    body = json.dumps(payload).encode()

    response = await post_signed(client, settings.psp_webhook_secret, body)

    assert response.status == 200
    assert await response.json() == {"received": True, "duplicate": False}
    rows = await settle_rows(sessionmaker, order_id)
    # The provider's payment id rides along, so settle can ask the provider before locking anything.
    assert [(r.queue_name, r.kwargs) for r in rows] == [
        (
            "settle",
            {
                "event_id": payload["id"],
                "order_id": order_id,
                "provider_payment_id": payload["data"]["payment_id"],
            },
        )
    ]
    async with sessionmaker() as session:
        stored = await session.get(WebhookEvent, payload["id"])
    assert stored.type == "payment.succeeded" and stored.payload == payload

    async def sent() -> bool:
        async with sessionmaker() as session:
            row = await session.get(OutboxMessage, rows[0].id, populate_existing=True)
            return row.sent_at is not None

    await eventually(sent, timeout=10, what="the settle message to be confirmed by RabbitMQ")


async def test_duplicate_event_is_acknowledged_without_a_second_message(client, settings, sessionmaker):
    order_id = uuid.uuid4().hex
    body = json.dumps(event(order_id)).encode()
    assert (await post_signed(client, settings.psp_webhook_secret, body)).status == 200

    again = await post_signed(client, settings.psp_webhook_secret, body)

    assert again.status == 200
    assert await again.json() == {"received": True, "duplicate": True}
    assert len(await settle_rows(sessionmaker, order_id)) == 1


async def test_the_same_event_delivered_at_once_is_queued_once(client, settings, sessionmaker):
    order_id = uuid.uuid4().hex
    body = json.dumps(event(order_id)).encode()

    responses = await asyncio.gather(
        *(post_signed(client, settings.psp_webhook_secret, body) for _ in range(4))
    )

    assert [r.status for r in responses] == [200] * 4
    assert sorted([(await r.json())["duplicate"] for r in responses]) == [False, True, True, True]
    assert len(await settle_rows(sessionmaker, order_id)) == 1


async def test_bad_signatures_are_400(client, settings, sessionmaker):
    order_id = uuid.uuid4().hex
    body = json.dumps(event(order_id)).encode()

    unsigned = await client.post("/payments/webhook", data=body)
    wrong_secret = await post_signed(client, "not-the-shared-secret", body)
    stale = await post_signed(client, settings.psp_webhook_secret, body, timestamp=int(time.time()) - 3600)
    tampered = await client.post(
        "/payments/webhook",
        data=body.replace(b"4500", b"1"),
        headers={HEADER: sign(settings.psp_webhook_secret, body)},
    )

    for response in (unsigned, wrong_secret, stale, tampered):
        assert response.status == 400
        assert response.content_type == "application/problem+json"
        assert (await response.json())["type"].endswith("/invalid-signature")
    assert await settle_rows(sessionmaker, order_id) == []


async def test_signed_but_misshapen_events_are_400(client, settings):
    bodies = [
        b"not json",
        json.dumps([1, 2]).encode(),
        json.dumps({**event("x"), "id": ""}).encode(),
        json.dumps({**event("x"), "created": "yesterday"}).encode(),
        json.dumps({**event("x"), "data": {"amount_cents": 1}}).encode(),
        json.dumps({**event("x"), "data": {"payment_id": "p", "metadata": {"order_id": 7}}}).encode(),
    ]
    for body in bodies:
        response = await post_signed(client, settings.psp_webhook_secret, body)
        assert response.status == 400, body
        assert response.content_type == "application/problem+json"


async def test_event_without_an_order_is_still_queued(client, settings, sessionmaker):
    payload = event("unused")
    payload["data"]["metadata"] = {}
    payload["data"]["refund_id"] = "re_1"  # fields the gateway does not know are kept, not refused

    response = await post_signed(client, settings.psp_webhook_secret, json.dumps(payload).encode())

    assert response.status == 200
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.actor_name == "settle",
                OutboxMessage.kwargs["event_id"].as_string() == payload["id"],
            )
        )
    assert count == 1


async def test_a_signed_event_that_disagrees_is_acknowledged_and_settles_as_a_mismatch(
    client, settings, sessionmaker, runtime
):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    payment = (await load_order(sessionmaker, order_id)).payment
    payload = event(
        order_id,
        data={
            "payment_id": payment.provider_payment_id,
            "amount_cents": 1,
            "currency": "USD",
            "metadata": {"order_id": order_id, "payment_id": payment.id},
        },
    )

    response = await post_signed(client, settings.psp_webhook_secret, json.dumps(payload).encode())

    # Acknowledged, so the provider stops retrying; the settle step refuses it.
    assert response.status == 200
    [row] = await settle_rows(sessionmaker, order_id)
    assert await settle_payment(runtime, **row.kwargs) == "mismatch"
    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.payment.status) == ("AWAITING_PAYMENT", "PENDING")
