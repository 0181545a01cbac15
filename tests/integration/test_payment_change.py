"""``POST /orders/{id}/payment``: paying an order awaiting payment another way, on the real services.

Orders are taken through the gateway; their messages are delivered to the real steps one at a
time (tests/support/step_runner.py), so each interleaving is written down. The sandbox provider
sends its webhooks to the gateway under test, which records them and enqueues `settle` as in
production; what the provider itself recorded (``/v1/payments?order_id=``, ``/v1/refunds``) is the
judge of how much money was kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from sqlalchemy import select

from models.tables import IdempotencyKey, OutboxMessage, Payment, ReservedStock, WebhookEvent
from sandbox.psp import create_app as create_psp_app
from tests.support.gateway_calls import customer
from tests.support.polling import eventually
from tests.support.scenarios import assert_invariants, make_hold_due, provider
from tests.support.step_runner import StepRunner

PROBLEMS = "https://orders.example/problems/"
REDIRECT = {"payment": {"method": "redirect"}}
NO_RESPONSE = {"payment": {"method": "token", "token": "pm_card_no_response"}}
DECLINED = {"payment": {"method": "token", "token": "pm_card_declined"}}
PRICE, QUANTITY, STOCK = 1250, 2, 5
TOTAL = PRICE * QUANTITY


@pytest_asyncio.fixture
async def psp_url(client, settings, unused_tcp_port_factory):
    """The sandbox provider, its signed webhooks delivered to the gateway under test."""
    port = unused_tcp_port_factory()
    url = f"http://127.0.0.1:{port}"
    runner = web.AppRunner(
        create_psp_app(
            webhook_url=str(client.make_url("/payments/webhook")),
            webhook_secret=settings.psp_webhook_secret,
            public_url=url,
            retry_base_seconds=0.2,
            retry_max_seconds=1,
        )
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield url
    await runner.cleanup()


# -- helpers -----------------------------------------------------------------------------------


async def item(client, admin) -> str:
    sku = f"PAYCHG-{uuid.uuid4().hex[:10].upper()}"
    created = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": "Mug", "price_cents": PRICE}
    )
    assert created.status == 201, await created.text()
    stocked = await client.post(f"/items/{sku}/stock", headers=admin, json={"quantity": STOCK})
    assert stocked.status == 201, await stocked.text()
    return sku


async def new_order(client, admin, auth, payment: dict) -> tuple[str, str]:
    """A PENDING order of ``QUANTITY`` units, taken through the API; (order id, sku)."""
    sku = await item(client, admin)
    response = await client.post(
        "/orders",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"sku": sku, "quantity": QUANTITY}], **payment},
    )
    assert response.status == 202, await response.text()
    return (await response.json())["id"], sku


async def unpaid_order(client, admin, runtime, auth, payment: dict = REDIRECT) -> tuple[str, str, StepRunner]:
    """An order awaiting payment, its first attempt requested from the provider."""
    order_id, sku = await new_order(client, admin, auth, payment)
    steps = StepRunner(runtime, order_id)
    assert await steps.run("reserve") == [("reserve", "AWAITING_PAYMENT")]
    [(_, provider_payment_id)] = await steps.run("pay")
    assert provider_payment_id is not None
    return order_id, sku, steps


async def change(client, auth, order_id: str, body, key: str | None = None):
    return await client.post(
        f"/orders/{order_id}/payment", headers={**auth, "Idempotency-Key": key or uuid.uuid4().hex}, json=body
    )


async def order_doc(client, auth, order_id: str) -> dict:
    response = await client.get(f"/orders/{order_id}", headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


async def problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    if slug is not None:
        assert body["type"] == PROBLEMS + slug
    return body


async def approve(checkout_url: str, webhook_delay_s: float | None = None) -> None:
    """The customer pays on the provider's page (its webhook ``webhook_delay_s`` late)."""
    params = {"webhook_delay_s": str(webhook_delay_s)} if webhook_delay_s else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{checkout_url}/approve", params=params) as response,
    ):
        assert response.status == 200, await response.text()


async def received(sessionmaker, event_type: str, provider_payment_id: str) -> str:
    """Wait for the gateway to record the provider's ``event_type`` webhook about that payment."""

    async def probe() -> str | None:
        async with sessionmaker() as session:
            events = (
                await session.scalars(select(WebhookEvent).where(WebhookEvent.type == event_type))
            ).all()
        return next((e.id for e in events if e.payload["data"]["payment_id"] == provider_payment_id), None)

    return await eventually(probe, what=f"{event_type} of {provider_payment_id}")


async def attempts(sessionmaker, order_id: str) -> list[tuple[int, str]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Payment.attempt, Payment._status)
            .where(Payment.order_id == order_id)
            .order_by(Payment.attempt)
        )
        return [(attempt, status) for attempt, status in rows]


async def hold_expiries(sessionmaker, order_id: str) -> list:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(ReservedStock.expires_at)
                    .where(ReservedStock.order_id == order_id)
                    .order_by(ReservedStock.id)
                )
            ).all()
        )


async def at_provider(psp_url: str, order_id: str) -> list[dict]:
    """The order's payments as the provider recorded them, each with its refunds, oldest first."""
    _, payments = await provider(psp_url, "GET", "/v1/payments", order_id=order_id)
    for payment in payments["data"]:
        _, refunds = await provider(psp_url, "GET", "/v1/refunds", payment_id=payment["id"])
        payment["refunds"] = refunds["data"]
    return payments["data"]


def kept_cents(payments: list[dict]) -> int:
    """What the customer paid and was not given back, over every attempt."""
    return sum(
        p["amount_cents"] - sum(r["amount_cents"] for r in p["refunds"] if r["status"] == "succeeded")
        for p in payments
        if p["status"] == "succeeded"
    )


async def available(client, sku: str) -> int:
    return (await (await client.get(f"/items/{sku}")).json())["available"]


# -- what a change does ------------------------------------------------------------------------


async def test_a_change_replaces_the_attempt_voids_the_old_one_and_keeps_the_hold(
    client, admin, settings, runtime, sessionmaker, psp_url
):
    auth = await customer(client)
    order_id, _, steps = await unpaid_order(client, admin, runtime, auth)
    before = await order_doc(client, auth, order_id)
    holds_before = await hold_expiries(sessionmaker, order_id)
    old = before["payment"]

    response = await change(client, auth, order_id, NO_RESPONSE)

    assert response.status == 202, await response.text()
    assert response.headers["Location"] == f"/orders/{order_id}"
    body = await response.json()
    new = body["payment"]
    assert (new["attempt"], new["status"], new["method"], new["provider_payment_id"]) == (
        2,
        "PENDING",
        "token",
        None,
    )
    assert (new["amount_cents"], new["currency"]) == (old["amount_cents"], old["currency"]) == (TOTAL, "USD")
    assert [(p["id"], p["attempt"], p["status"]) for p in body["payments"]] == [
        (old["id"], 1, "CANCELLED"),
        (new["id"], 2, "PENDING"),
    ]
    assert body["status"] == "AWAITING_PAYMENT"
    assert body["hold_expires_at"] == before["hold_expires_at"]
    assert await hold_expiries(sessionmaker, order_id) == holds_before
    assert (body["history"][-1]["status"], body["history"][-1]["note"]) == (
        "AWAITING_PAYMENT",
        "payment_changed",
    )

    # The old attempt is voided at the provider, the new one requested.
    assert await steps.run("void") == [("void", "cancelled")]
    [(_, new_provider_id)] = await steps.run("pay")
    recorded = await at_provider(psp_url, order_id)
    assert [(p["metadata"]["payment_id"], p["status"]) for p in recorded] == [
        (old["id"], "cancelled"),
        (new["id"], "pending"),
    ]
    shown = await order_doc(client, auth, order_id)
    assert (shown["payment"]["id"], shown["payment"]["provider_payment_id"]) == (new["id"], new_provider_id)
    assert [p["id"] for p in shown["payments"]] == [old["id"], new["id"]]

    # Announced once: the customer's email and the domain event of order.updated.
    async with sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order_id))).all()
    emails = [
        m.kwargs for m in rows if m.actor_name == "notify" and m.kwargs["event_type"] == "order.updated"
    ]
    events = [m.kwargs for m in rows if m.routing_key == "order.updated"]
    assert emails == [{"order_id": order_id, "event_type": "order.updated", "occurrence": new["id"]}]
    assert [(e["type"], e["order"]["payment"]["id"]) for e in events] == [("order.updated", new["id"])]
    await assert_invariants(sessionmaker)


async def test_a_new_attempt_that_succeeds_places_the_order_on_one_charge(
    client, admin, runtime, sessionmaker, psp_url
):
    auth = await customer(client)
    order_id, sku, steps = await unpaid_order(client, admin, runtime, auth)

    response = await change(client, auth, order_id, {"payment": {"method": "token", "token": "pm_card_ok"}})
    assert response.status == 202, await response.text()
    await steps.run("void")
    [(_, new_provider_id)] = await steps.run("pay")
    event = await received(sessionmaker, "payment.succeeded", new_provider_id)

    assert await steps.run("settle", event_id=event) == [("settle", "placed")]

    order = await order_doc(client, auth, order_id)
    assert order["status"] == "PLACED"
    assert [(p["attempt"], p["status"]) for p in order["payments"]] == [(1, "CANCELLED"), (2, "SUCCEEDED")]
    assert await available(client, sku) == STOCK - QUANTITY
    assert kept_cents(await at_provider(psp_url, order_id)) == TOTAL
    await assert_invariants(sessionmaker)


async def test_a_new_attempt_that_fails_cancels_the_order_as_payment_failed(
    client, admin, runtime, sessionmaker, psp_url
):
    auth = await customer(client)
    order_id, sku, steps = await unpaid_order(client, admin, runtime, auth, NO_RESPONSE)

    response = await change(client, auth, order_id, DECLINED)
    assert response.status == 202, await response.text()
    assert await steps.run("void") == [("void", "cancelled")]
    [(_, new_provider_id)] = await steps.run("pay")
    event = await received(sessionmaker, "payment.failed", new_provider_id)

    assert await steps.run("settle", event_id=event) == [("settle", "cancelled_payment_failed")]

    order = await order_doc(client, auth, order_id)
    assert (order["status"], order["reason"]) == ("CANCELLED", "payment_failed")
    assert [(p["attempt"], p["status"]) for p in order["payments"]] == [(1, "CANCELLED"), (2, "FAILED")]
    assert await available(client, sku) == STOCK
    assert kept_cents(await at_provider(psp_url, order_id)) == 0
    await assert_invariants(sessionmaker)


# -- the replaced attempt succeeds anyway ------------------------------------------------------


async def old_attempt_paid_during_the_change(client, admin, runtime, sessionmaker, settled_first: str):
    """The customer pays on the first attempt's page, then switches to a new page before that
    webhook arrives, and pays there too; both successes are settled (``settled_first`` first) and
    the refund the fleet asks for is confirmed. Returns (auth, order id, sku, steps, attempts)."""
    auth = await customer(client)
    order_id, sku, steps = await unpaid_order(client, admin, runtime, auth)
    first = (await order_doc(client, auth, order_id))["payment"]
    await approve(first["checkout_url"], webhook_delay_s=1)

    response = await change(client, auth, order_id, REDIRECT)

    assert response.status == 202, await response.text()
    # Too late to void: the provider says it succeeded.
    assert await steps.run("void") == [("void", "already_succeeded")]
    await steps.run("pay")
    second = (await order_doc(client, auth, order_id))["payment"]
    assert second["attempt"] == 2 and second["checkout_url"]
    await approve(second["checkout_url"])
    events = {
        "old": await received(sessionmaker, "payment.succeeded", first["provider_payment_id"]),
        "new": await received(sessionmaker, "payment.succeeded", second["provider_payment_id"]),
    }
    outcomes = {}
    for which in (settled_first, "new" if settled_first == "old" else "old"):
        [(_, outcomes[which])] = await steps.run("settle", event_id=events[which])
    assert outcomes == {"old": "replaced_payment_refunding", "new": "placed"}
    [(_, refund_id)] = await steps.run("refund")
    refunded = await received(sessionmaker, "refund.succeeded", first["provider_payment_id"])
    assert await steps.run("settle", event_id=refunded) == [("settle", "refunded")]
    assert refund_id is not None
    return auth, order_id, sku, steps, (first, second)


@pytest.mark.parametrize("settled_first", ["old", "new"])
async def test_an_old_attempt_that_succeeds_after_the_change_is_refunded_in_full(
    client, admin, runtime, sessionmaker, psp_url, settled_first
):
    auth, order_id, sku, _, (first, second) = await old_attempt_paid_during_the_change(
        client, admin, runtime, sessionmaker, settled_first
    )

    order = await order_doc(client, auth, order_id)
    assert order["status"] == "PLACED"
    assert (order["payment"]["id"], order["payment"]["status"]) == (second["id"], "SUCCEEDED")
    assert [(p["attempt"], p["status"], p["refunded_cents"]) for p in order["payments"]] == [
        (1, "REFUNDED", TOTAL),
        (2, "SUCCEEDED", 0),
    ]
    assert "replaced payment attempt 1 succeeded: refunded" in [entry["note"] for entry in order["history"]]
    assert await available(client, sku) == STOCK - QUANTITY
    # The provider's own records: two captures, the old one given back whole, one charge kept.
    recorded = {p["id"]: p for p in await at_provider(psp_url, order_id)}
    assert {p["status"] for p in recorded.values()} == {"succeeded"}
    assert [r["amount_cents"] for r in recorded[first["provider_payment_id"]]["refunds"]] == [TOTAL]
    assert recorded[second["provider_payment_id"]]["refunds"] == []
    assert kept_cents(list(recorded.values())) == TOTAL
    await assert_invariants(sessionmaker)


async def test_messages_of_both_attempts_delivered_again_change_nothing_more(
    client, admin, runtime, sessionmaker, psp_url
):
    auth, order_id, sku, steps, _ = await old_attempt_paid_during_the_change(
        client, admin, runtime, sessionmaker, "old"
    )
    order, recorded = await order_doc(client, auth, order_id), await at_provider(psp_url, order_id)
    messages = len(await steps.messages("pay", "void", "settle", "refund", "notify", "expire"))

    # Every pay, void, settle and refund message so far, again, twice at the same moment.
    kinds = ("pay", "void", "settle", "refund")
    await asyncio.gather(steps.again(*kinds), steps.again(*kinds))

    assert await order_doc(client, auth, order_id) == order
    assert await at_provider(psp_url, order_id) == recorded
    assert len(await steps.messages("pay", "void", "settle", "refund", "notify", "expire")) == messages
    assert await available(client, sku) == STOCK - QUANTITY
    await assert_invariants(sessionmaker)


# -- the hold runs out around the change -------------------------------------------------------


@pytest.mark.parametrize("paid", ["current", "replaced"])
async def test_a_payment_after_the_hold_ran_out_follows_the_late_payment_policy_of_the_current_attempt(
    client, admin, runtime, sessionmaker, psp_url, paid
):
    auth = await customer(client)
    order_id, sku, steps = await unpaid_order(client, admin, runtime, auth)
    first = (await order_doc(client, auth, order_id))["payment"]
    if paid == "replaced":
        await approve(first["checkout_url"], webhook_delay_s=0.5)
    response = await change(client, auth, order_id, REDIRECT)
    assert response.status == 202, await response.text()
    await steps.run("void")
    await steps.run("pay")
    second = (await order_doc(client, auth, order_id))["payment"]
    if paid == "current":
        # Paid just as the hold ran out; the webhook comes after the expiry.
        await approve(second["checkout_url"], webhook_delay_s=0.5)
    await make_hold_due(sessionmaker, order_id)

    assert await steps.run("expire") == [("expire", "CANCELLED")]

    assert (await order_doc(client, auth, order_id))["reason"] == "payment_timeout"
    late = await problem(await change(client, auth, order_id, REDIRECT), 409, "payment-not-changeable")
    assert late["order_status"] == "CANCELLED"
    # The expiry gives up the current attempt too (refused by the provider when it was paid).
    [(_, voided)] = await steps.run("void")
    assert voided == ("already_succeeded" if paid == "current" else "cancelled")
    paid_id = (second if paid == "current" else first)["provider_payment_id"]
    event = await received(sessionmaker, "payment.succeeded", paid_id)
    [(_, outcome)] = await steps.run("settle", event_id=event)
    await steps.run("refund")

    order = await order_doc(client, auth, order_id)
    recorded = await at_provider(psp_url, order_id)
    if paid == "current":
        # Late payment of the current attempt: reinstated (stock was still there).
        assert outcome == "late_payment_reinstated"
        assert order["status"] == "PLACED" and order["payment"]["status"] == "SUCCEEDED"
        assert await available(client, sku) == STOCK - QUANTITY
        assert kept_cents(recorded) == TOTAL
    else:
        # A replaced attempt never reinstates the order: it is given back.
        assert outcome == "replaced_payment_refunding"
        assert (order["status"], order["reason"]) == ("CANCELLED", "payment_timeout")
        assert [(p["attempt"], p["status"]) for p in order["payments"]] == [
            (1, "REFUND_PENDING"),
            (2, "CANCELLED"),
        ]
        assert await available(client, sku) == STOCK
        assert kept_cents(recorded) == 0
    await assert_invariants(sessionmaker)


# -- pay asking the provider while the attempt is replaced --------------------------------------


@dataclasses.dataclass
class ChangeWhileAsking:
    """The provider client, with the customer changing the payment while the first request to
    create a payment is under way (after `pay` read the order, before the provider answered)."""

    psp: object
    during: object

    async def create_payment(self, **request):
        during, self.during = self.during, None
        if during is not None:
            await during()
        return await self.psp.create_payment(**request)

    def __getattr__(self, name: str):
        return getattr(self.psp, name)


@pytest.mark.parametrize("first_token", ["pm_card_no_response", "pm_not_a_test_token"])
async def test_an_attempt_replaced_while_pay_asks_the_provider_never_decides_the_order(
    client, admin, runtime, sessionmaker, psp_url, first_token
):
    auth = await customer(client)
    order_id, _ = await new_order(client, admin, auth, {"payment": {"method": "token", "token": first_token}})
    steps = StepRunner(runtime, order_id)
    await steps.run("reserve")

    async def switch() -> None:
        assert (await change(client, auth, order_id, REDIRECT)).status == 202

    asking = dataclasses.replace(runtime, psp=ChangeWhileAsking(runtime.psp, switch))

    [(_, first_provider_id)] = await steps.through(asking).run("pay")

    order = await order_doc(client, auth, order_id)
    first, second = order["payments"]
    assert order["status"] == "AWAITING_PAYMENT" and order["payment"]["id"] == second["id"]
    assert (first["status"], second["status"], second["provider_payment_id"]) == (
        "CANCELLED",
        "PENDING",
        None,
    )
    if first_token == "pm_card_no_response":
        # Created at the provider just as it was replaced: recorded, then voided.
        assert first["provider_payment_id"] == first_provider_id is not None
        assert await steps.run("void") == [("void", "cancelled")]
    else:
        # Refused by the provider: nothing to void, and the order is not failed for it.
        assert first_provider_id is None and first["provider_payment_id"] is None
        assert await steps.messages("void") == []
    [(_, second_provider_id)] = await steps.run("pay")
    recorded = {p["metadata"]["payment_id"]: p["status"] for p in await at_provider(psp_url, order_id)}
    assert recorded[second["id"]] == "pending"
    assert recorded.get(first["id"]) in ({"cancelled"} if first_provider_id else {None})
    assert (await order_doc(client, auth, order_id))["payment"]["provider_payment_id"] == second_provider_id
    await assert_invariants(sessionmaker)


# -- two changes at once -----------------------------------------------------------------------


async def test_concurrent_changes_leave_exactly_one_current_pending_attempt(
    client, admin, runtime, sessionmaker, psp_url
):
    auth = await customer(client)
    order_id, _, steps = await unpaid_order(client, admin, runtime, auth)

    responses = await asyncio.gather(*(change(client, auth, order_id, REDIRECT) for _ in range(4)))

    statuses = [response.status for response in responses]
    assert set(statuses) <= {202, 409} and 202 in statuses, statuses
    accepted = statuses.count(202)
    rows = await attempts(sessionmaker, order_id)
    assert [attempt for attempt, _ in rows] == list(range(1, accepted + 2))
    assert [status for _, status in rows] == ["CANCELLED"] * accepted + ["PENDING"]
    current = (await order_doc(client, auth, order_id))["payment"]
    assert current["attempt"] == accepted + 1
    # Only the first attempt was known to the provider; `pay` asks only for the current one.
    assert len(await steps.messages("void")) == 1
    results = [provider_id for _, provider_id in await steps.run("pay")]
    assert len([r for r in results if r]) == 1
    recorded = [(p["metadata"]["payment_id"], p["status"]) for p in await at_provider(psp_url, order_id)]
    assert recorded[-1] == (current["id"], "pending") and len(recorded) == 2


# -- the endpoint's rules ----------------------------------------------------------------------


async def test_only_the_owner_changes_how_an_order_is_paid(client, admin, runtime, sessionmaker):
    owner, stranger = await customer(client), await customer(client)
    order_id, _, _ = await unpaid_order(client, admin, runtime, owner)

    someone_else = await change(client, stranger, order_id, REDIRECT)
    operator = await change(client, admin, order_id, REDIRECT)
    anonymous = await client.post(
        f"/orders/{order_id}/payment", headers={"Idempotency-Key": uuid.uuid4().hex}, json=REDIRECT
    )
    missing = await change(client, owner, uuid.uuid4().hex, REDIRECT)

    # Someone else's order answers as a missing one does.
    assert (await problem(someone_else, 404))["detail"] == f"no order {order_id!r} among your orders"
    await problem(missing, 404)
    await problem(operator, 403)
    await problem(anonymous, 401)
    assert await attempts(sessionmaker, order_id) == [(1, "PENDING")]


async def test_an_order_not_awaiting_payment_keeps_its_payment(client, admin, runtime, sessionmaker, psp_url):
    auth = await customer(client)
    pending, _ = await new_order(client, admin, auth, REDIRECT)  # not reserved yet
    cancelled, _, cancelling = await unpaid_order(client, admin, runtime, auth)
    assert (await client.post(f"/orders/{cancelled}/cancel", headers=auth)).status == 202
    assert await cancelling.run("cancel") == [("cancel", "CANCELLED")]
    placed, _, placing = await unpaid_order(
        client, admin, runtime, auth, {"payment": {"method": "token", "token": "pm_card_ok"}}
    )
    provider_id = (await order_doc(client, auth, placed))["payment"]["provider_payment_id"]
    await placing.run("settle", event_id=await received(sessionmaker, "payment.succeeded", provider_id))

    for order_id, status in ((pending, "PENDING"), (cancelled, "CANCELLED"), (placed, "PLACED")):
        key = uuid.uuid4().hex
        refused = await problem(
            await change(client, auth, order_id, REDIRECT, key), 409, "payment-not-changeable"
        )
        assert refused["order_status"] == status
        assert len(await attempts(sessionmaker, order_id)) == 1
        async with sessionmaker() as session:
            # Only an accepted change keeps its key.
            assert await session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == key)) is None


async def test_the_idempotency_key_answers_a_retry_and_refuses_another_request(
    client, admin, runtime, sessionmaker, psp_url
):
    auth = await customer(client)
    order_id, _, steps = await unpaid_order(client, admin, runtime, auth)
    other_order, _, _ = await unpaid_order(client, admin, runtime, auth)
    key = uuid.uuid4().hex

    missing = await client.post(f"/orders/{order_id}/payment", headers=auth, json=REDIRECT)
    first = await change(client, auth, order_id, NO_RESPONSE, key)
    replay = await client.post(
        f"/orders/{order_id}/payment",
        headers={**auth, "Idempotency-Key": key, "Content-Type": "application/json"},
        data=b'{ "payment" : { "token": "pm_card_no_response", "method": "token" } }',
    )
    other_body = await change(client, auth, order_id, REDIRECT, key)
    other_order_same_body = await change(client, auth, other_order, NO_RESPONSE, key)

    await problem(missing, 400, "missing-idempotency-key")
    assert first.status == 202 and replay.status == 202, await replay.text()
    assert (await replay.json())["payment"] == (await first.json())["payment"]
    await problem(other_body, 422, "idempotency-key-reused")
    await problem(other_order_same_body, 422, "idempotency-key-reused")
    assert await attempts(sessionmaker, order_id) == [(1, "CANCELLED"), (2, "PENDING")]
    assert await attempts(sessionmaker, other_order) == [(1, "PENDING")]
    assert len(await steps.messages("pay")) == 2  # the first attempt's, and the change's once

    # A replay once the order moved on answers with the order as it is now, changing nothing.
    assert (await client.post(f"/orders/{order_id}/cancel", headers=auth)).status == 202
    await steps.run("cancel")
    late = await change(client, auth, order_id, NO_RESPONSE, key)
    assert late.status == 202, await late.text()
    assert (await late.json())["status"] == "CANCELLED"
    assert await attempts(sessionmaker, order_id) == [(1, "CANCELLED"), (2, "CANCELLED")]


async def test_payment_bodies_are_checked_as_for_new_orders(client, admin, runtime, sessionmaker):
    auth = await customer(client)
    order_id, _, _ = await unpaid_order(client, admin, runtime, auth)

    refusals = [
        ({"payment": {"method": "cash"}}, 422, "invalid-request"),
        ({"payment": {"method": "token"}}, 422, "invalid-request"),
        ({"payment": {"method": "redirect"}, "note": "x"}, 422, "invalid-request"),
        ({"payment": {"method": "token", "token": "4242 4242 4242 4242"}}, 422, "invalid-request"),
        ([], 422, "invalid-request"),
        # No payment named and no default payment method on the account.
        ({}, 422, "invalid-request"),
    ]
    for body, status, slug in refusals:
        refused = await problem(await change(client, auth, order_id, body), status, slug)
        assert "4242" not in refused["detail"]
    await problem(
        await client.post(
            f"/orders/{order_id}/payment",
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"},
            data=b"{not json",
        ),
        400,
        "malformed-json",
    )
    assert await attempts(sessionmaker, order_id) == [(1, "PENDING")]

    # With a default payment method, a body naming none pays with it, as POST /orders does.
    saved = await client.patch(
        "/accounts/me",
        headers=auth,
        json={"default_payment_method": {"method": "token", "token": "pm_card_ok"}},
    )
    assert saved.status == 200, await saved.text()
    accepted = await change(client, auth, order_id, {})
    assert accepted.status == 202, await accepted.text()
    assert (await accepted.json())["payment"]["method"] == "token"
    async with sessionmaker() as session:
        tokens = (
            await session.scalars(
                select(Payment.token).where(Payment.order_id == order_id).order_by(Payment.attempt)
            )
        ).all()
    assert tokens == [None, "pm_card_ok"]
