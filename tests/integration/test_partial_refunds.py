"""Partial refunds on the real database, broker and sandbox provider.

The operator's requests go through the gateway; the `refund` and `settle` steps run as the
workers run them, and the provider's events are the ones the sandbox itself recorded (as its
webhook would deliver them). Every test checks the provider's own books: never more refunded
than captured.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from actors.cancel import cancel_order
from actors.refund import refund_payment
from actors.settle import settle_payment
from models.tables import OutboxMessage, Refund, WebhookEvent
from tests.support.factories import load_order
from tests.support.scenarios import assert_invariants, placed_order, provider

PROBLEMS = "https://orders.example/problems/"


async def refund(client, admin, order_id: str, body: dict | None = None, key: str | None = None):
    headers = {**admin, "Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post(f"/orders/{order_id}/refund", headers=headers, json=body)


async def refund_messages(sessionmaker, order_id: str) -> list[dict]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage.kwargs)
            .where(OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "refund")
            .order_by(OutboxMessage.created_at)
        )
        return list(rows.all())


async def deliver_refund_events(psp_url: str, sessionmaker, provider_payment_id: str) -> list[str]:
    """Record the provider's refund events for the payment as the gateway's webhook does; their ids."""
    _, events = await provider(psp_url, "GET", "/v1/events", payment_id=provider_payment_id)
    recorded = []
    async with sessionmaker() as session, session.begin():
        for event in events["data"]:
            body = {key: event[key] for key in ("id", "type", "created", "data")}
            if body["type"] != "refund.succeeded" or await session.get(WebhookEvent, body["id"]):
                continue
            session.add(WebhookEvent(id=body["id"], type=body["type"], payload=body))
            recorded.append(body["id"])
    return recorded


async def provider_books(psp_url: str, provider_payment_id: str) -> tuple[int, int, int]:
    """(captured, refunded, number of refunds) as the provider records them for the payment."""
    _, payment = await provider(psp_url, "GET", f"/v1/payments/{provider_payment_id}")
    _, refunds = await provider(psp_url, "GET", "/v1/refunds", payment_id=provider_payment_id)
    captured = payment["amount_cents"] if payment["status"] == "succeeded" else 0
    refunded = sum(r["amount_cents"] for r in refunds["data"])
    assert refunded == payment["amount_refunded_cents"]
    return captured, refunded, len(refunds["data"])


async def run_refunds(runtime, sessionmaker, psp_url, order_id: str) -> None:
    """Run every queued refund step (each twice, as a redelivery would) and settle the provider's events."""
    for message in await refund_messages(sessionmaker, order_id):
        await refund_payment(runtime, **message)
        await refund_payment(runtime, **message)
    order = await load_order(sessionmaker, order_id)
    for event_id in await deliver_refund_events(psp_url, sessionmaker, order.payment.provider_payment_id):
        await settle_payment(runtime, event_id, order_id)


async def test_refunds_in_parts_until_all_is_given_back(client, admin, runtime, sessionmaker, psp_url):
    order_id = await placed_order(runtime, sessionmaker)
    order = await load_order(sessionmaker, order_id)
    captured, payment_id = order.payment.amount_cents, order.payment.id

    first = await refund(client, admin, order_id, {"amount_cents": 500, "reason": "scratched mug"})
    assert first.status == 202, await first.text()
    body = await first.json()
    assert (body["status"], body["refunded_cents"]) == ("REFUND_PENDING", 0)
    assert [(r["amount_cents"], r["status"], r["reason"]) for r in body["refunds"]] == [
        (500, "PENDING", "scratched mug")
    ]

    await run_refunds(runtime, sessionmaker, psp_url, order_id)
    payment = await (await client.get(f"/payments/{payment_id}", headers=admin)).json()
    assert (payment["status"], payment["refunded_cents"], payment["refunded"]) == (
        "PARTIALLY_REFUNDED",
        500,
        False,
    )
    shown = await (await client.get(f"/orders/{order_id}", headers=admin)).json()
    assert (shown["status"], shown["refunded_cents"], shown["payment"]["refunded_cents"]) == (
        "PLACED",
        500,
        500,
    )

    # No amount: what is left.
    rest = await refund(client, admin, order_id)
    assert rest.status == 202, await rest.text()
    assert [r["amount_cents"] for r in (await rest.json())["refunds"]] == [500, captured - 500]
    await run_refunds(runtime, sessionmaker, psp_url, order_id)

    payment = await (await client.get(f"/payments/{payment_id}", headers=admin)).json()
    assert (payment["status"], payment["refunded_cents"], payment["refunded"]) == ("REFUNDED", captured, True)
    assert [r["status"] for r in payment["refunds"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert await provider_books(psp_url, order.payment.provider_payment_id) == (captured, captured, 2)
    # Each refund its own key: two provider refunds, two `order.refunded` events and emails.
    async with sessionmaker() as session:
        announced = (
            await session.scalars(
                select(OutboxMessage.kwargs).where(
                    OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "notify"
                )
            )
        ).all()
    refund_ids = {r["id"] for r in payment["refunds"]}
    assert {m["occurrence"] for m in announced if m["event_type"] == "order.refunded"} == refund_ids
    over = await refund(client, admin, order_id, {"amount_cents": 1})
    assert over.status == 422 and (await over.json())["type"] == PROBLEMS + "refund-too-large"
    # A refund moves money only: the order and its stock stay as they are.
    assert (await load_order(sessionmaker, order_id)).status == "PLACED"
    await assert_invariants(sessionmaker)


async def test_more_than_is_left_is_refused_with_what_is_left(client, admin, runtime, sessionmaker):
    order_id = await placed_order(runtime, sessionmaker)
    captured = (await load_order(sessionmaker, order_id)).payment.amount_cents
    assert (await refund(client, admin, order_id, {"amount_cents": 300})).status == 202

    # What is left counts the refund still in flight.
    too_much = await refund(client, admin, order_id, {"amount_cents": captured - 299})

    assert too_much.status == 422
    problem = await too_much.json()
    assert (problem["type"], problem["left_cents"]) == (PROBLEMS + "refund-too-large", captured - 300)
    assert len(await refund_messages(sessionmaker, order_id)) == 1


async def test_concurrent_partial_refunds_never_exceed_the_capture(
    client, admin, runtime, sessionmaker, psp_url
):
    order_id = await placed_order(runtime, sessionmaker)
    order = await load_order(sessionmaker, order_id)
    captured = order.payment.amount_cents
    share = captured * 2 // 5  # at most two of five fit

    answers = await asyncio.gather(
        *(refund(client, admin, order_id, {"amount_cents": share}) for _ in range(5))
    )

    statuses = sorted(answer.status for answer in answers)
    assert statuses == [202, 202, 422, 422, 422], statuses
    await run_refunds(runtime, sessionmaker, psp_url, order_id)
    async with sessionmaker() as session:
        ours = (await session.scalars(select(Refund).where(Refund.order_id == order_id))).all()
    assert [(r.amount_cents, r.status) for r in ours] == [(share, "SUCCEEDED")] * 2
    _, refunded, count = await provider_books(psp_url, order.payment.provider_payment_id)
    assert (refunded, count) == (2 * share, 2)
    order = await load_order(sessionmaker, order_id)
    assert (order.payment.status, order.payment.refunded_cents) == ("PARTIALLY_REFUNDED", 2 * share)


async def test_the_same_key_refunds_once_whatever_the_body(client, admin, runtime, sessionmaker):
    order_id = await placed_order(runtime, sessionmaker)
    key = uuid.uuid4().hex

    answers = await asyncio.gather(
        refund(client, admin, order_id, {"amount_cents": 100}, key=key),
        refund(client, admin, order_id, {"amount_cents": 100}, key=key),
    )
    later = await refund(client, admin, order_id, {"amount_cents": 700}, key=key)

    # The second waits for the first's lock on the order, then finds its key.
    assert [answer.status for answer in answers] == [202, 202]
    first, second = [await answer.json() for answer in answers]
    assert first == second and [r["amount_cents"] for r in first["refunds"]] == [100]
    assert later.status == 202
    assert await later.json() == first
    assert len(await refund_messages(sessionmaker, order_id)) == 1


async def test_a_refund_the_provider_refuses_moves_no_money(client, admin, runtime, sessionmaker, psp_url):
    order_id = await placed_order(runtime, sessionmaker)
    order = await load_order(sessionmaker, order_id)
    captured, provider_payment_id = order.payment.amount_cents, order.payment.provider_payment_id
    # Money given back at the provider outside the fleet (its dashboard, say): 400 cents are gone.
    async with runtime.psp._client().post(
        f"{psp_url}/v1/refunds",
        json={"payment_id": provider_payment_id, "amount_cents": 400},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    ) as answer:
        assert answer.status == 201

    assert (await refund(client, admin, order_id)).status == 202  # all we think is left
    [message] = await refund_messages(sessionmaker, order_id)
    assert await refund_payment(runtime, **message) is None  # the provider refuses an over-refund

    order = await load_order(sessionmaker, order_id)
    assert (order.payment.status, order.payment.refunded_cents) == ("SUCCEEDED", 0)
    async with sessionmaker() as session:
        [ours] = (await session.scalars(select(Refund).where(Refund.order_id == order_id))).all()
    assert ours.status == "FAILED"
    assert "refused by the provider (amount_too_large)" in order.history[-1].note
    assert await provider_books(psp_url, provider_payment_id) == (captured, 400, 1)
    # What failed is free again: a smaller refund goes through.
    assert (await refund(client, admin, order_id, {"amount_cents": captured - 400})).status == 202


async def test_two_refund_webhooks_at_once_count_both_once(client, admin, runtime, sessionmaker, psp_url):
    order_id = await placed_order(runtime, sessionmaker)
    order = await load_order(sessionmaker, order_id)
    for amount in (100, 200):
        assert (await refund(client, admin, order_id, {"amount_cents": amount})).status == 202
    for message in await refund_messages(sessionmaker, order_id):
        await refund_payment(runtime, **message)
    events = await deliver_refund_events(psp_url, sessionmaker, order.payment.provider_payment_id)
    assert len(events) == 2

    # Both events at once, each delivered twice.
    outcomes = await asyncio.gather(*(settle_payment(runtime, event_id) for event_id in events * 2))

    assert sorted(outcomes) == [
        "refunded",
        "refunded",
        "refunded",
        "refunded",
    ]  # the stored outcome, replayed
    order = await load_order(sessionmaker, order_id)
    assert (order.payment.status, order.payment.refunded_cents) == ("PARTIALLY_REFUNDED", 300)
    notes = [entry.note for entry in order.history]
    assert notes.count("refund of 100 cents confirmed") == notes.count("refund of 200 cents confirmed") == 1


async def test_cancelling_after_a_partial_refund_refunds_only_the_rest(
    client, admin, runtime, sessionmaker, psp_url
):
    order_id = await placed_order(runtime, sessionmaker)
    order = await load_order(sessionmaker, order_id)
    captured = order.payment.amount_cents
    assert (await refund(client, admin, order_id, {"amount_cents": 250})).status == 202
    await run_refunds(runtime, sessionmaker, psp_url, order_id)

    await cancel_order(runtime, order_id, "admin_cancelled")
    await run_refunds(runtime, sessionmaker, psp_url, order_id)

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.payment.status, order.payment.refunded_cents) == (
        "CANCELLED",
        "REFUNDED",
        captured,
    )
    assert await provider_books(psp_url, order.payment.provider_payment_id) == (captured, captured, 2)
    await assert_invariants(sessionmaker)
