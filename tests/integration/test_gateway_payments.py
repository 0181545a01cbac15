"""Payments through the gateway: ``GET /payments/{id}`` and the operator's ``POST /orders/{id}/refund``.

Orders are taken through the API and moved as the workers would (paid: AWAITING_PAYMENT, payment
SUCCEEDED, PLACED). One test runs the whole refund through the real ``refund`` step, the sandbox
provider and the ``settle`` step. Customer tokens are issued directly (sign-in has a rate limit
of its own, tested elsewhere).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from actors.refund import refund_payment
from actors.settle import settle_payment
from gateway.http.auth import issue_token
from models.archive import archive_batch
from models.clock import utcnow
from models.repository import lock_order
from models.state import OrderStatus, PaymentStatus, Reason, move_payment
from models.tables import IdempotencyKey, OutboxMessage
from models.unit_of_work import UnitOfWork
from tests.support.factories import load_order
from tests.support.gateway_calls import NoMessages, place
from tests.support.scenarios import awaiting_payment, provider, provider_event

PROBLEMS = "https://orders.example/problems/"
PAYMENT_FIELDS = {
    "id",
    "order_id",
    "status",
    "method",
    "amount_cents",
    "currency",
    "checkout_url",
    "provider_payment_id",
    "refunded_cents",
    "refunds",
    "refunded",
    "created_at",
    "updated_at",
}


async def customer(client, settings) -> dict[str, str]:
    email = f"payer-{uuid.uuid4().hex[:12]}@example.com"
    created = await client.post(
        "/accounts", json={"email": email, "name": "Payer", "password": "long password"}
    )
    assert created.status == 201, await created.text()
    return bearer(settings, (await created.json())["id"])


def bearer(settings, account_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, account_id).access_token}"}


async def settle_as_worker(
    sessionmaker,
    order_id: str,
    payment_status: PaymentStatus,
    order_moves: list[tuple[OrderStatus, Reason | None]],
) -> None:
    """Give the order's payment ``payment_status`` and move the order, in one transaction."""
    async with UnitOfWork(sessionmaker, NoMessages()) as uow:
        order = await lock_order(uow.session, order_id)
        payment = order.payment
        if payment_status == PaymentStatus.SUCCEEDED:
            payment.provider_payment_id = f"pay_{uuid.uuid4().hex}"
        move_payment(payment, payment_status)
        for status, reason in order_moves:
            uow.move(order, status, reason)
        await uow.commit()


async def paid_order(client, admin, sessionmaker, auth) -> str:
    order_id = await place(client, admin, auth)
    await settle_as_worker(
        sessionmaker,
        order_id,
        PaymentStatus.SUCCEEDED,
        [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.PLACED, None)],
    )
    return order_id


async def refund_messages(sessionmaker, order_id: str) -> list[dict]:
    async with sessionmaker() as session:
        return [
            m.kwargs
            for m in (
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "refund"
                    )
                )
            ).all()
        ]


async def refund(client, admin, order_id: str, key: str | None = None, **kwargs):
    return await client.post(
        f"/orders/{order_id}/refund", headers={**admin, "Idempotency-Key": key or uuid.uuid4().hex}, **kwargs
    )


async def problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    if slug is not None:
        assert body["type"] == PROBLEMS + slug
    return body


# -- GET /payments/{id} ------------------------------------------------------------------------


async def test_owner_and_operator_see_the_payment_and_nobody_else_does(client, admin, settings):
    owner, stranger = await customer(client, settings), await customer(client, settings)
    order = await (await client.get(f"/orders/{await place(client, admin, owner)}", headers=owner)).json()
    payment_id = order["payment"]["id"]

    mine = await client.get(f"/payments/{payment_id}", headers=owner)
    operator = await client.get(f"/payments/{payment_id}", headers=admin)

    assert mine.status == 200, await mine.text()
    body = await mine.json()
    assert set(body) == PAYMENT_FIELDS  # no token, no provider secret
    assert body == await operator.json()
    assert (body["id"], body["order_id"], body["status"], body["method"]) == (
        payment_id,
        order["id"],
        "PENDING",
        "redirect",
    )
    assert (body["amount_cents"], body["currency"], body["refunded"]) == (900, "USD", False)
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")

    # Someone else's payment answers exactly like one that does not exist.
    theirs = await problem(await client.get(f"/payments/{payment_id}", headers=stranger), 404)
    missing_id = uuid.uuid4().hex
    unknown = await problem(await client.get(f"/payments/{missing_id}", headers=stranger), 404)
    assert theirs["detail"] == unknown["detail"].replace(missing_id, payment_id)
    await problem(await client.get(f"/payments/{'x' * 40}", headers=admin), 404)
    anonymous = await client.get(f"/payments/{payment_id}")
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_paid_payment_shows_the_provider_id_but_never_the_token(
    client, admin, settings, sessionmaker
):
    auth = await customer(client, settings)
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    created = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": "Thing", "price_cents": 300}
    )
    assert created.status == 201, await created.text()
    placed = await client.post(
        "/orders",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"sku": sku, "quantity": 2}], "payment": {"method": "token", "token": "pm_card_ok"}},
    )
    order = await placed.json()
    await settle_as_worker(
        sessionmaker,
        order["id"],
        PaymentStatus.SUCCEEDED,
        [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.PLACED, None)],
    )

    response = await client.get(f"/payments/{order['payment']['id']}", headers=auth)

    body = await response.json()
    assert body["status"] == "SUCCEEDED" and body["method"] == "token" and body["amount_cents"] == 600
    assert body["provider_payment_id"].startswith("pay_")
    assert "pm_card_ok" not in await response.text()


async def test_the_payment_of_an_archived_order_is_still_found(client, admin, settings, sessionmaker):
    owner, stranger = await customer(client, settings), await customer(client, settings)
    order_id = await place(client, admin, owner)
    await settle_as_worker(
        sessionmaker,
        order_id,
        PaymentStatus.FAILED,
        [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.CANCELLED, Reason.PAYMENT_FAILED)],
    )
    before = await (await client.get(f"/orders/{order_id}", headers=owner)).json()
    payment_id = before["payment"]["id"]
    hot = await (await client.get(f"/payments/{payment_id}", headers=owner)).json()
    # As the archive step does it; this also archives other tests' finished orders.
    while True:
        async with sessionmaker() as session, session.begin():
            moved = await archive_batch(session, utcnow() + timedelta(seconds=1))
        assert moved, "the order was never due for the archive"
        if order_id in moved:
            break
    assert (await (await client.get(f"/orders/{order_id}", headers=owner)).json())["archived"] is True

    archived = await client.get(f"/payments/{payment_id}", headers=owner)
    by_operator = await client.get(f"/payments/{payment_id}", headers=admin)

    assert archived.status == 200, await archived.text()
    assert await archived.json() == hot == await by_operator.json()
    assert hot["status"] == "FAILED"
    await problem(await client.get(f"/payments/{payment_id}", headers=stranger), 404)
    # Refunding it is refused: the order is final and archived.
    refused = await problem(await refund(client, admin, order_id), 409, "not-refundable")
    assert "archived" in refused["detail"]


# -- POST /orders/{id}/refund ------------------------------------------------------------------


async def test_refund_of_a_paid_order_is_queued_once_and_keeps_the_order_status(
    client, admin, settings, sessionmaker
):
    auth = await customer(client, settings)
    order_id = await paid_order(client, admin, sessionmaker, auth)
    key = str(uuid.uuid4())

    first = await refund(client, admin, order_id, key)

    assert first.status == 202, await first.text()
    payment = await first.json()
    assert set(payment) == PAYMENT_FIELDS
    assert (payment["order_id"], payment["status"], payment["refunded"], payment["refunded_cents"]) == (
        order_id,
        "REFUND_PENDING",
        False,
        0,
    )
    [asked] = payment["refunds"]
    # No amount: all that is left, which is all of it.
    assert (asked["amount_cents"], asked["status"]) == (payment["amount_cents"], "PENDING")
    assert first.headers["Location"] == f"/payments/{payment['id']}"
    assert await refund_messages(sessionmaker, order_id) == [
        {"order_id": order_id, "payment_id": payment["id"], "refund_id": asked["id"]}
    ]
    order = await (await client.get(f"/orders/{order_id}", headers=auth)).json()
    assert order["status"] == "PLACED"
    note = f"refund of {payment['amount_cents']} cents requested"
    assert order["history"][-1]["status"] == "PLACED" and order["history"][-1]["note"] == note
    assert order["payment"]["status"] == "REFUND_PENDING"

    # The same key again, whatever the body: the same answer, nothing more refunded.
    same_key = await refund(client, admin, order_id, key)
    same_key_other_body = await refund(client, admin, order_id, key, json={"amount_cents": 1})
    for again in (same_key, same_key_other_body):
        assert again.status == 202, await again.text()
        assert await again.json() == payment
    # A new key: nothing is left to refund.
    refused = await problem(await refund(client, admin, order_id), 422, "refund-too-large")
    assert refused["left_cents"] == 0
    assert len(await refund_messages(sessionmaker, order_id)) == 1
    history = (await (await client.get(f"/orders/{order_id}", headers=auth)).json())["history"]
    assert [entry["note"] for entry in history].count(note) == 1
    async with sessionmaker() as session:
        stored = await session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.scope == "refund", IdempotencyKey.key == key)
        )
    assert stored.order_id == order_id
    # The customer sees the refund on the payment too.
    assert (await (await client.get(f"/payments/{payment['id']}", headers=auth)).json())[
        "status"
    ] == "REFUND_PENDING"


async def test_a_key_used_for_one_order_is_refused_for_another(client, admin, settings, sessionmaker):
    auth, other = await customer(client, settings), await customer(client, settings)
    first = await paid_order(client, admin, sessionmaker, auth)
    same_customer = await paid_order(client, admin, sessionmaker, auth)
    other_customer = await paid_order(client, admin, sessionmaker, other)
    key = uuid.uuid4().hex
    assert (await refund(client, admin, first, key)).status == 202

    for order_id in (same_customer, other_customer):
        refused = await problem(await refund(client, admin, order_id, key), 422, "idempotency-key-reused")
        assert "another order" in refused["detail"]
        assert await refund_messages(sessionmaker, order_id) == []
        assert (await load_order(sessionmaker, order_id)).payment.status == "SUCCEEDED"


async def test_refund_needs_the_operator_a_key_and_a_valid_body(client, admin, settings, sessionmaker):
    auth = await customer(client, settings)
    order_id = await paid_order(client, admin, sessionmaker, auth)

    no_key = await client.post(f"/orders/{order_id}/refund", headers=admin)
    bad_key = await client.post(f"/orders/{order_id}/refund", headers={**admin, "Idempotency-Key": "é" * 3})
    by_owner = await client.post(f"/orders/{order_id}/refund", headers={**auth, "Idempotency-Key": "k1"})
    anonymous = await client.post(f"/orders/{order_id}/refund", headers={"Idempotency-Key": "k2"})
    nothing = await refund(client, admin, order_id, json={"amount_cents": 0})
    unknown_field = await refund(client, admin, order_id, json={"cents": 100})
    not_json = await refund(client, admin, order_id, data=b"{nope")
    unknown = await refund(client, admin, uuid.uuid4().hex)

    await problem(no_key, 400, "missing-idempotency-key")
    await problem(bad_key, 400, "invalid-idempotency-key")
    await problem(by_owner, 403)
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await problem(nothing, 422, "invalid-request"))["field"] == "amount_cents"
    await problem(unknown_field, 422, "invalid-request")
    await problem(not_json, 400, "malformed-json")
    await problem(unknown, 404)
    assert await refund_messages(sessionmaker, order_id) == []
    assert (await load_order(sessionmaker, order_id)).payment.status == "SUCCEEDED"


async def test_a_payment_that_never_succeeded_is_not_refundable(client, admin, settings, sessionmaker):
    auth = await customer(client, settings)
    pending = await place(client, admin, auth)
    failed = await place(client, admin, auth)
    await settle_as_worker(
        sessionmaker,
        failed,
        PaymentStatus.FAILED,
        [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.CANCELLED, Reason.PAYMENT_FAILED)],
    )
    cancelled = await place(client, admin, auth)
    await settle_as_worker(
        sessionmaker, cancelled, PaymentStatus.CANCELLED, [(OrderStatus.CANCELLED, Reason.CUSTOMER_CANCELLED)]
    )
    keys = {}

    for order_id, status in ((pending, "PENDING"), (failed, "FAILED"), (cancelled, "CANCELLED")):
        keys[order_id] = uuid.uuid4().hex
        refused = await problem(await refund(client, admin, order_id, keys[order_id]), 409, "not-refundable")
        assert refused["payment_status"] == status and status in refused["detail"]
        assert await refund_messages(sessionmaker, order_id) == []
        assert (await load_order(sessionmaker, order_id)).payment.status == status

    # A refused request keeps no key: once the payment has succeeded, the same key refunds it.
    await settle_as_worker(
        sessionmaker,
        pending,
        PaymentStatus.SUCCEEDED,
        [(OrderStatus.AWAITING_PAYMENT, None), (OrderStatus.PLACED, None)],
    )
    later = await refund(client, admin, pending, keys[pending])
    assert later.status == 202, await later.text()
    assert len(await refund_messages(sessionmaker, pending)) == 1


async def test_refund_runs_through_the_provider_and_the_payment_ends_refunded(
    client, admin, settings, sessionmaker, runtime, psp_url
):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)
    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.payment.status) == ("PLACED", "SUCCEEDED")
    owner = bearer(settings, order.account_id)

    accepted = await refund(client, admin, order_id)
    assert accepted.status == 202, await accepted.text()
    [message] = await refund_messages(sessionmaker, order_id)
    # The step, delivered twice: one refund at the provider.
    refund_id = await refund_payment(runtime, **message)
    assert refund_id and await refund_payment(runtime, **message) == refund_id
    _, refunds = await provider(psp_url, "GET", "/v1/refunds", payment_id=order.payment.provider_payment_id)
    assert [r["id"] for r in refunds["data"]] == [refund_id]
    event = await provider_event(sessionmaker, order_id, "refund.succeeded", refund_id=refund_id)
    assert await settle_payment(runtime, event, order_id) == "refunded"

    payment = await (await client.get(f"/payments/{order.payment.id}", headers=owner)).json()
    assert (payment["status"], payment["refunded"]) == ("REFUNDED", True)
    assert payment["refunded_cents"] == payment["amount_cents"]
    assert [(r["id"], r["status"]) for r in payment["refunds"]] == [(message["refund_id"], "SUCCEEDED")]
    # Refunded in full: a new request has nothing left to refund.
    await problem(await refund(client, admin, order_id), 422, "refund-too-large")
    assert len(await refund_messages(sessionmaker, order_id)) == 1
    assert (await load_order(sessionmaker, order_id)).status == "PLACED"
