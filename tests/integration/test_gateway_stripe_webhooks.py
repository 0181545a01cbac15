"""Stripe's webhooks through the gateway (``PSP_PROVIDER=stripe``): verified with Stripe's scheme,
recorded once as the provider events settle knows, handed to settle through the outbox."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from gateway.app import create_app
from models.tables import OutboxMessage, WebhookEvent
from providers.webhook_signature import HEADER as SANDBOX_HEADER
from providers.webhook_signature import sign
from tests.support.stripe_events import SECRET, event_body, intent, refund, stripe_header


@pytest_asyncio.fixture
async def stripe_client(settings):
    """The gateway in Stripe mode, served on a test server over real HTTP."""
    stripe_settings = dataclasses.replace(
        settings, psp_provider="stripe", stripe_api_key="sk_test_gateway", stripe_webhook_secret=SECRET
    )
    async with TestClient(TestServer(create_app(stripe_settings))) as client:
        yield client


async def post(client, body: bytes, headers: dict[str, str]):
    return await client.post(
        "/payments/webhook", data=body, headers={**headers, "Content-Type": "application/json"}
    )


async def post_stripe(client, body: bytes, **signing):
    return await post(client, body, {"Stripe-Signature": stripe_header(body, **signing)})


def ours(order_id: str, payment_id: str | None = None) -> dict:
    return {"order_id": order_id, "payment_id": payment_id or uuid.uuid4().hex}


async def stored(sessionmaker, event_id: str) -> WebhookEvent | None:
    async with sessionmaker() as session:
        return await session.get(WebhookEvent, event_id)


async def settle_messages(sessionmaker, order_id: str) -> list[dict]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "settle"
            )
        )
        return [row.kwargs for row in rows]


async def test_a_succeeded_payment_intent_is_recorded_as_payment_succeeded_and_queued(
    stripe_client, sessionmaker
):
    order_id, event_id = uuid.uuid4().hex, f"evt_{uuid.uuid4().hex}"
    body = event_body("payment_intent.succeeded", intent(metadata=ours(order_id)), event_id)

    response = await post_stripe(stripe_client, body)

    assert response.status == 200
    assert await response.json() == {"received": True, "duplicate": False}
    row = await stored(sessionmaker, event_id)
    assert row is not None and row.type == "payment.succeeded"
    assert row.payload["data"]["payment_id"] == "pi_3Qx"
    assert row.payload["stripe_type"] == "payment_intent.succeeded"
    assert await settle_messages(sessionmaker, order_id) == [
        {"event_id": event_id, "order_id": order_id, "provider_payment_id": "pi_3Qx"}
    ]


async def test_the_same_stripe_event_twice_is_recorded_and_queued_once(stripe_client, sessionmaker):
    order_id, event_id = uuid.uuid4().hex, f"evt_{uuid.uuid4().hex}"
    body = event_body(
        "payment_intent.payment_failed", intent("requires_payment_method", metadata=ours(order_id)), event_id
    )

    first = await post_stripe(stripe_client, body)
    again = await post_stripe(stripe_client, body)

    assert (await first.json())["duplicate"] is False
    assert (await again.json())["duplicate"] is True
    assert len(await settle_messages(sessionmaker, order_id)) == 1


async def test_a_refund_event_is_recorded_as_refund_succeeded_without_asking_about_the_payment(
    stripe_client, sessionmaker
):
    event_id = f"evt_{uuid.uuid4().hex}"
    created = refund()
    order_id = uuid.uuid4().hex
    created["metadata"] = {**ours(order_id), "refund_id": uuid.uuid4().hex}
    response = await post_stripe(stripe_client, event_body("refund.created", created, event_id))

    assert response.status == 200
    row = await stored(sessionmaker, event_id)
    assert row is not None and row.type == "refund.succeeded" and row.payload["data"]["refund_id"] == "re_3Qx"
    assert await settle_messages(sessionmaker, order_id) == [
        {"event_id": event_id, "order_id": order_id, "provider_payment_id": None}
    ]


async def test_a_cancelled_payment_intent_is_recorded_as_done_without_a_settle_step(
    stripe_client, sessionmaker
):
    order_id, event_id = uuid.uuid4().hex, f"evt_{uuid.uuid4().hex}"
    body = event_body("payment_intent.canceled", intent("canceled", metadata=ours(order_id)), event_id)

    response = await post_stripe(stripe_client, body)

    assert response.status == 200
    row = await stored(sessionmaker, event_id)
    assert row is not None and row.type == "payment.cancelled"
    assert (row.outcome, row.processed_at is not None) == ("unhandled_type", True)
    assert await settle_messages(sessionmaker, order_id) == []


async def test_an_event_type_the_fleet_does_not_act_on_is_acknowledged_and_not_recorded(
    stripe_client, sessionmaker
):
    event_id = f"evt_{uuid.uuid4().hex}"
    body = event_body("charge.refunded", {"id": "ch_1", "object": "charge", "amount_refunded": 100}, event_id)

    response = await post_stripe(stripe_client, body)

    assert response.status == 200 and (await response.json())["received"] is True
    assert await stored(sessionmaker, event_id) is None


async def test_an_event_for_a_payment_nobody_knows_is_acknowledged(stripe_client, sessionmaker):
    event_id = f"evt_{uuid.uuid4().hex}"
    body = event_body("payment_intent.succeeded", intent(metadata={}), event_id)

    response = await post_stripe(stripe_client, body)

    assert response.status == 200
    assert await stored(sessionmaker, event_id) is not None  # settle acknowledges it and logs


async def test_stripe_mode_refuses_the_sandbox_signature(stripe_client, sessionmaker):
    event_id = f"evt_{uuid.uuid4().hex}"
    body = event_body("payment_intent.succeeded", intent(), event_id)

    response = await post(stripe_client, body, {SANDBOX_HEADER: sign("dev-webhook-secret", body)})

    assert response.status == 400
    problem = await response.json()
    assert problem["type"].endswith("invalid-signature") and "Stripe-Signature" in problem["detail"]
    assert await stored(sessionmaker, event_id) is None


async def test_sandbox_mode_refuses_a_stripe_signature(client, sessionmaker):
    event_id = f"evt_{uuid.uuid4().hex}"
    body = event_body("payment_intent.succeeded", intent(), event_id)

    response = await post_stripe(client, body)

    assert response.status == 400
    assert await stored(sessionmaker, event_id) is None


async def test_a_stale_or_wrongly_signed_stripe_event_is_a_400_problem(stripe_client):
    body = event_body("payment_intent.succeeded", intent())
    stale = await post_stripe(stripe_client, body, timestamp=1_700_000_000)
    wrong = await post_stripe(stripe_client, body, secret="whsec_not_ours")
    for response in (stale, wrong):
        assert response.status == 400
        assert response.headers["Content-Type"].startswith("application/problem+json")


async def test_a_signed_body_that_is_not_an_event_is_a_400_problem(stripe_client):
    body = json.dumps({"id": "evt_x", "object": "event", "type": "payment_intent.succeeded"}).encode()
    response = await post_stripe(stripe_client, body)
    assert response.status == 400
    assert (await response.json())["type"].endswith("invalid-event")
