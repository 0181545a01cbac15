"""Returns of delivered orders through the gateway, on the real database, broker and sandbox provider:
requesting (rules, idempotency, races), receiving with and without restock, rejecting, the refund
through the provider, what the order shows, and the emails and events in the outbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from actors.notify import send_notification
from actors.pay import request_payment
from actors.refund import refund_payment
from actors.reserve import reserve_stock
from actors.settle import SettleOutcome, settle_payment
from gateway.http.auth import issue_token
from gateway.openapi.spec import build_spec
from models.archive import archive_finished
from models.clock import utcnow
from models.invariants import stock_ledgers
from models.reconcile import reconcile
from models.refunds import refunds_of, start_refund
from models.state import NotificationStatus, OrderStatus
from models.tables import (
    Order,
    OrderHistory,
    OutboxMessage,
    ReservedStock,
    Return,
    WebhookEvent,
    orders_archive,
    returns_archive,
)
from tests.integration.test_openapi import conforms
from tests.support.factories import available, load_order, make_account, make_item, make_order
from tests.support.scenarios import assert_invariants, provider, provider_event

PROBLEMS = "https://orders.example/problems/"


# -- orders brought to DELIVERED, and the calls of the API --------------------------------------


def bearer(settings, account_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, account_id).access_token}"}


class Delivered:
    """A delivered order: its id, its customer's headers and its SKUs (as given, in order)."""

    def __init__(self, order_id: str, auth: dict[str, str], skus: list[str]):
        self.id, self.auth, self.skus = order_id, auth, skus


async def delivered(
    client, admin, settings, runtime, sessionmaker, lines: list[tuple[int, int]] | None = None
) -> Delivered:
    """An order of new items ((quantity, unit price) per line, 5 more of each in stock) paid at the
    sandbox provider with pm_card_ok, settled by its success webhook, then shipped and delivered
    through the gateway."""
    lines = lines or [(3, 1000)]
    account = await make_account(sessionmaker)
    skus = [await make_item(sessionmaker, stock=quantity + 5, price_cents=price) for quantity, price in lines]
    order_id = await make_order(
        sessionmaker, account, {sku: quantity for sku, (quantity, _) in zip(skus, lines, strict=True)}
    )
    await reserve_stock(runtime, order_id)
    await request_payment(runtime, order_id)
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)
    for action in ("ship", "deliver"):
        response = await client.post(f"/orders/{order_id}/{action}", headers=admin)
        assert response.status == 200, await response.text()
    await runtime.publisher.flush()
    return Delivered(order_id, bearer(settings, account), skus)


async def ask(client, order: Delivered, items: list[tuple[str, int]], *, key: str | None = None, **extra):
    """``POST /orders/{id}/returns`` as the order's customer."""
    body = {"items": [{"sku": sku, "quantity": quantity} for sku, quantity in items], **extra}
    return await client.post(
        f"/orders/{order.id}/returns",
        headers={**order.auth, "Idempotency-Key": key or uuid.uuid4().hex},
        json=body,
    )


async def requested(client, order: Delivered, items: list[tuple[str, int]], **extra) -> dict:
    response = await ask(client, order, items, **extra)
    assert response.status == 201, await response.text()
    return await response.json()


async def receive(client, admin, return_id: str, restock: bool = True):
    return await client.post(f"/returns/{return_id}/receive", headers=admin, json={"restock": restock})


async def reject(client, admin, return_id: str, reason: str = "worn"):
    return await client.post(f"/returns/{return_id}/reject", headers=admin, json={"reason": reason})


async def problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    if slug is not None:
        assert body["type"] == PROBLEMS + slug
    return body


async def outbox(sessionmaker, order_id: str) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.order_id == order_id)
                    .order_by(OutboxMessage.created_at)
                )
            ).all()
        )


async def refund_messages(sessionmaker, order_id: str) -> list[dict]:
    return [m.kwargs for m in await outbox(sessionmaker, order_id) if m.actor_name == "refund"]


async def stored_returns(sessionmaker, order_id: str) -> list[Return]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Return).where(Return.order_id == order_id))).all())


async def confirm_refund(runtime, sessionmaker, psp_url: str, message: dict) -> str:
    """Run the `refund` step for ``message``, then settle the provider's own `refund.succeeded`
    webhook for it, recorded as the gateway records it; returns the settle outcome."""
    provider_refund_id = await refund_payment(runtime, **message)
    assert provider_refund_id
    order = await load_order(sessionmaker, message["order_id"])
    _, events = await provider(psp_url, "GET", "/v1/events", payment_id=order.payment.provider_payment_id)
    [event] = [
        e
        for e in events["data"]
        if e["type"] == "refund.succeeded" and e["data"].get("refund_id") == provider_refund_id
    ]
    payload = {key: event[key] for key in ("id", "type", "created", "data")}
    async with sessionmaker() as session, session.begin():
        session.add(WebhookEvent(id=event["id"], type=event["type"], payload=payload))
    return await settle_payment(runtime, event["id"], message["order_id"])


async def all_returns(client, order: Delivered) -> list[dict]:
    return (await (await client.get(f"/orders/{order.id}/returns", headers=order.auth)).json())["returns"]


async def refunds(sessionmaker, payment_id: str):
    async with sessionmaker() as session:
        return await refunds_of(await session.connection(), payment_id)


async def drift_of(sessionmaker, skus: list[str]) -> list[int]:
    async with sessionmaker() as session:
        return [ledger.drift for ledger in await stock_ledgers(session, skus)]


# -- requesting ---------------------------------------------------------------------------------


async def test_a_return_is_requested_and_shown_on_the_order_with_its_email_and_event(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(3, 1000), (1, 2500)])
    first, second = order.skus
    spec = build_spec()

    response = await ask(client, order, [(second, 1), (first.lower(), 2)], reason="too small")

    created = await conforms(spec, response)
    assert response.status == 201 and response.headers["Location"] == f"/returns/{created['id']}"
    assert (created["order_id"], created["status"], created["reason"]) == (order.id, "REQUESTED", "too small")
    assert created["items"] == sorted(
        [
            {"sku": first, "quantity": 2, "unit_price_cents": 1000},
            {"sku": second, "quantity": 1, "unit_price_cents": 2500},
        ],
        key=lambda line: line["sku"],
    )
    assert (created["restocked"], created["refund_id"], created["rejection_reason"]) == (None, None, None)
    for headers in (order.auth, admin):
        seen = await conforms(spec, await client.get(f"/orders/{order.id}", headers=headers))
        assert seen["status"] == "DELIVERED" and seen["returns"] == [created]
        assert seen["history"][-1]["note"] == "return requested"
        listed = await conforms(spec, await client.get(f"/orders/{order.id}/returns", headers=headers))
        assert listed == {"returns": [created]}
        assert await conforms(spec, await client.get(f"/returns/{created['id']}", headers=headers)) == created
    page = await (await client.get("/orders", headers=order.auth)).json()
    assert [o["returns"] for o in page["orders"] if o["id"] == order.id] == [[created]]

    rows = await outbox(sessionmaker, order.id)
    notify = [
        r.kwargs
        for r in rows
        if r.actor_name == "notify" and r.kwargs["event_type"].startswith("order.return")
    ]
    assert notify == [
        {"order_id": order.id, "event_type": "order.return_requested", "occurrence": created["id"]}
    ]
    [event] = [r for r in rows if r.routing_key == "order.return_requested"]
    assert event.exchange == settings.events_exchange
    assert event.kwargs["type"] == "order.return_requested"
    assert event.kwargs["order"]["returns"] == [created]


async def test_the_return_requested_email_goes_out_once(client, admin, settings, mailing, sessionmaker, smtp):
    order = await delivered(client, admin, settings, mailing, sessionmaker)
    created = await requested(client, order, [(order.skus[0], 1)])

    first = await send_notification(mailing, order.id, "order.return_requested", occurrence=created["id"])
    again = await send_notification(mailing, order.id, "order.return_requested", occurrence=created["id"])

    assert (first, again) == (NotificationStatus.SENT, None)
    [message] = [m for m in smtp.recorder.for_order(order.id) if "return" in m["Subject"]]
    assert message["Subject"] == f"Order {order.id} has a return on its way"


async def test_the_idempotency_key_answers_the_same_return_and_refuses_another_body(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker)
    other = await delivered(client, admin, settings, runtime, sessionmaker)
    # The other order made the same customer's.
    owner = (await load_order(sessionmaker, order.id)).account_id
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Order).where(Order.id == other.id).values(account_id=owner))
    other.auth = order.auth
    sku, key = order.skus[0], uuid.uuid4().hex

    missing = await client.post(
        f"/orders/{order.id}/returns", headers=order.auth, json={"items": [{"sku": sku, "quantity": 1}]}
    )
    first = await ask(client, order, [(sku, 1)], key=key)
    again = await ask(client, order, [(sku, 1)], key=key)
    other_body = await ask(client, order, [(sku, 2)], key=key)
    other_order = await ask(client, other, [(other.skus[0], 1)], key=key)

    await problem(missing, 400, "missing-idempotency-key")
    assert (first.status, again.status) == (201, 201)
    assert await again.json() == await first.json()
    await problem(other_body, 422, "idempotency-key-reused")
    await problem(other_order, 422, "idempotency-key-reused")
    assert len(await stored_returns(sessionmaker, order.id)) == 1
    assert await stored_returns(sessionmaker, other.id) == []


async def test_only_the_customer_of_a_delivered_order_returns_it_within_the_window(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker)
    sku = order.skus[0]
    stranger = bearer(settings, await make_account(sessionmaker))

    not_theirs = await client.post(
        f"/orders/{order.id}/returns",
        headers={**stranger, "Idempotency-Key": "k"},
        json={"items": [{"sku": sku, "quantity": 1}]},
    )
    as_admin = await client.post(
        f"/orders/{order.id}/returns",
        headers={**admin, "Idempotency-Key": "k"},
        json={"items": [{"sku": sku, "quantity": 1}]},
    )
    await problem(not_theirs, 404)
    await problem(as_admin, 403)
    await problem(await client.get(f"/orders/{order.id}/returns", headers=stranger), 404)

    # A PLACED order (paid, not yet shipped) is not returnable yet.
    account = await make_account(sessionmaker)
    item = await make_item(sessionmaker, stock=2)
    placed_id = await make_order(sessionmaker, account, {item: 1})
    await reserve_stock(runtime, placed_id)
    await request_payment(runtime, placed_id)
    await settle_payment(
        runtime, await provider_event(sessionmaker, placed_id, "payment.succeeded"), placed_id
    )
    placed = Delivered(placed_id, bearer(settings, account), [item])
    refused = await problem(await ask(client, placed, [(item, 1)]), 409, "not-returnable")
    assert refused["order_status"] == "PLACED"

    # Delivered longer ago than the window: too late.
    window = settings.return_window_seconds
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OrderHistory)
            .where(OrderHistory.order_id == order.id, OrderHistory.status == OrderStatus.DELIVERED.value)
            .values(at=utcnow() - timedelta(seconds=window + 5))
        )
    late = await problem(await ask(client, order, [(sku, 1)]), 409, "not-returnable")
    assert late["order_status"] == "DELIVERED" and "window" in late["detail"]
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OrderHistory)
            .where(OrderHistory.order_id == order.id, OrderHistory.status == OrderStatus.DELIVERED.value)
            .values(at=utcnow() - timedelta(seconds=window - 60))
        )
    assert (await ask(client, order, [(sku, 1)])).status == 201
    assert len(await stored_returns(sessionmaker, order.id)) == 1


async def test_items_the_order_cannot_return_are_refused_naming_the_field(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(2, 1000), (1, 500)])
    first, second = order.skus

    unknown = await problem(
        await ask(client, order, [(first, 1), ("NOT-IN-ORDER", 1)]), 422, "invalid-request"
    )
    zero = await problem(await ask(client, order, [(first, 0)]), 422, "invalid-request")
    twice = await problem(await ask(client, order, [(first, 1), (first.lower(), 1)]), 422, "invalid-request")
    empty = await problem(await ask(client, order, []), 422, "invalid-request")
    too_many = await problem(await ask(client, order, [(second, 1), (first, 3)]), 422, "invalid-request")

    assert unknown["field"] == "items[1].sku"
    assert zero["field"] == "items[0].quantity"
    assert twice["field"] == "items[1].sku"
    assert empty["field"] == "items"
    assert (too_many["field"], too_many["limit"]) == ("items[1].quantity", 2)
    assert await stored_returns(sessionmaker, order.id) == []


async def test_returns_share_the_delivered_quantity_and_a_rejected_one_frees_its_units(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(3, 1000)])
    sku = order.skus[0]

    first = await requested(client, order, [(sku, 2)])
    beyond = await problem(await ask(client, order, [(sku, 2)]), 422, "invalid-request")
    second = await requested(client, order, [(sku, 1)])
    assert beyond["limit"] == 1
    await problem(await ask(client, order, [(sku, 1)]), 422, "invalid-request")

    rejected = await reject(client, admin, first["id"], reason="no receipt")
    assert rejected.status == 200, await rejected.text()
    body = await rejected.json()
    assert (body["status"], body["rejection_reason"]) == ("REJECTED", "no receipt")
    again = await reject(client, admin, first["id"], reason="another reason")
    assert again.status == 200 and await again.json() == body  # answered as before, nothing changed
    refused = await problem(await receive(client, admin, first["id"]), 409, "illegal-return-move")
    assert refused["return_status"] == "REJECTED"

    third = await requested(client, order, [(sku, 2)])
    shown = await (await client.get(f"/orders/{order.id}", headers=order.auth)).json()
    assert [(r["id"], r["status"]) for r in shown["returns"]] == [
        (first["id"], "REJECTED"),
        (second["id"], "REQUESTED"),
        (third["id"], "REQUESTED"),
    ]
    assert [h["note"] for h in shown["history"] if h["note"] and "return" in h["note"]] == [
        "return requested",
        "return requested",
        "return rejected",
        "return requested",
    ]
    assert shown["status"] == "DELIVERED"


async def test_concurrent_requests_never_claim_more_than_was_delivered(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(3, 1000)])
    sku = order.skus[0]

    answers = await asyncio.gather(*(ask(client, order, [(sku, 2)]) for _ in range(4)))

    assert sorted(response.status for response in answers) == [201, 422, 422, 422]
    last = await asyncio.gather(*(ask(client, order, [(sku, 1)]) for _ in range(3)))
    assert sorted(response.status for response in last) == [201, 422, 422]
    claimed = sum(line["quantity"] for r in await all_returns(client, order) for line in r["items"])
    assert claimed == 3


async def test_unknown_returns_and_other_customers_returns_are_not_found(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker)
    created = await requested(client, order, [(order.skus[0], 1)])
    stranger = bearer(settings, await make_account(sessionmaker))

    await problem(await client.get(f"/returns/{created['id']}", headers=stranger), 404)
    await problem(await client.get(f"/returns/{uuid.uuid4().hex}", headers=admin), 404)
    await problem(await receive(client, admin, uuid.uuid4().hex), 404)
    await problem(await reject(client, admin, "x" * 40), 404)
    await problem(await receive(client, order.auth, created["id"]), 403)
    await problem(await client.post(f"/returns/{created['id']}/receive", headers=admin, json={}), 422)
    await problem(await reject(client, admin, created["id"], reason="  "), 422)


# -- receiving and the refund -------------------------------------------------------------------


async def test_receiving_with_restock_puts_units_on_sale_and_refunds_the_lines_value(
    client, admin, settings, runtime, sessionmaker, psp_url
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(3, 1000), (1, 2500)])
    first, second = order.skus
    before = [await available(sessionmaker, sku) for sku in order.skus]
    created = await requested(client, order, [(first, 2), (second, 1)])
    spec = build_spec()

    response = await receive(client, admin, created["id"], restock=True)

    received = await conforms(spec, response, path=f"/returns/{created['id']}/receive")
    assert response.status == 202
    assert (received["status"], received["restocked"]) == ("RECEIVED", True) and received["refund_id"]
    assert [await available(sessionmaker, sku) for sku in order.skus] == [before[0] + 2, before[1] + 1]
    assert await drift_of(sessionmaker, order.skus) == [0, 0]
    async with sessionmaker() as session:
        _, drifts = await reconcile(session)
        holds = (
            await session.execute(
                select(ReservedStock.sku, ReservedStock.state, ReservedStock.quantity)
                .where(ReservedStock.order_id == order.id)
                .order_by(ReservedStock.sku, ReservedStock.state)
            )
        ).all()
    assert not {d.ledger.sku for d in drifts} & set(order.skus)
    # The trail: what stayed sold and what came back, per SKU.
    assert sorted(map(tuple, holds)) == sorted(
        [(first, "COMMITTED", 1), (first, "RELEASED", 2), (second, "RELEASED", 1)]
    )
    await assert_invariants(sessionmaker)

    stored = await load_order(sessionmaker, order.id)
    [refund] = await refunds(sessionmaker, stored.payment.id)
    assert (refund.id, refund.amount_cents, refund.return_id, refund.status) == (
        received["refund_id"],
        2 * 1000 + 2500,
        created["id"],
        "PENDING",
    )
    assert stored.payment.status == "REFUND_PENDING"
    [message] = await refund_messages(sessionmaker, order.id)
    assert message == {"order_id": order.id, "payment_id": stored.payment.id, "refund_id": refund.id}
    notes = [h.note for h in stored.history if h.note]
    assert notes[-2:] == ["return received", "refund of 4500 cents requested"]
    rows = await outbox(sessionmaker, order.id)
    assert {"order_id": order.id, "event_type": "order.return_received", "occurrence": created["id"]} in [
        r.kwargs for r in rows if r.actor_name == "notify"
    ]
    [event] = [r for r in rows if r.routing_key == "order.return_received"]
    assert event.kwargs["order"]["returns"][0]["status"] == "RECEIVED"

    assert await confirm_refund(runtime, sessionmaker, psp_url, message) == SettleOutcome.REFUNDED

    shown = await (await client.get(f"/orders/{order.id}", headers=order.auth)).json()
    assert shown["status"] == "DELIVERED"
    assert [r["status"] for r in shown["returns"]] == ["REFUNDED"]
    assert (shown["refunded_cents"], shown["payment"]["status"]) == (4500, "PARTIALLY_REFUNDED")
    refunded = [r for r in await outbox(sessionmaker, order.id) if r.routing_key == "order.refunded"]
    assert [e.kwargs["order"]["returns"][0]["status"] for e in refunded] == ["REFUNDED"]
    assert {"order_id": order.id, "event_type": "order.refunded", "occurrence": refund.id} in [
        r.kwargs for r in await outbox(sessionmaker, order.id) if r.actor_name == "notify"
    ]


async def test_receiving_without_restock_leaves_stock_as_it_is_and_still_refunds(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(2, 1200)])
    sku = order.skus[0]
    before = await available(sessionmaker, sku)
    created = await requested(client, order, [(sku, 1)])

    response = await receive(client, admin, created["id"], restock=False)

    assert response.status == 202, await response.text()
    body = await response.json()
    assert (body["status"], body["restocked"]) == ("RECEIVED", False)
    assert await available(sessionmaker, sku) == before
    async with sessionmaker() as session:
        states = (
            await session.execute(
                select(ReservedStock.state, ReservedStock.quantity).where(ReservedStock.order_id == order.id)
            )
        ).all()
    assert [tuple(s) for s in states] == [("COMMITTED", 2)]
    stored = await load_order(sessionmaker, order.id)
    assert [r.amount_cents for r in await refunds(sessionmaker, stored.payment.id)] == [1200]
    await assert_invariants(sessionmaker)


async def test_a_return_received_twice_or_at_once_restocks_and_refunds_once(
    client, admin, settings, runtime, sessionmaker
):
    for concurrently in (False, True):
        order = await delivered(client, admin, settings, runtime, sessionmaker, [(2, 1000)])
        sku = order.skus[0]
        before = await available(sessionmaker, sku)
        created = await requested(client, order, [(sku, 2)])

        if concurrently:
            answers = await asyncio.gather(*(receive(client, admin, created["id"]) for _ in range(3)))
        else:
            answers = [await receive(client, admin, created["id"]) for _ in range(2)]
            answers.append(await receive(client, admin, created["id"], restock=False))

        assert {response.status for response in answers} == {202}
        bodies = [await response.json() for response in answers]
        assert len({body["refund_id"] for body in bodies}) == 1 and bodies[0]["refund_id"]
        assert all(body["restocked"] is True for body in bodies)
        assert await available(sessionmaker, sku) == before + 2
        stored = await load_order(sessionmaker, order.id)
        assert len(await refunds(sessionmaker, stored.payment.id)) == 1
        assert len(await refund_messages(sessionmaker, order.id)) == 1
        assert [h.note for h in stored.history].count("return received") == 1
        await assert_invariants(sessionmaker)


async def test_receive_racing_reject_one_wins_and_the_other_is_a_conflict(
    client, admin, settings, runtime, sessionmaker
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(2, 1000)])
    sku = order.skus[0]
    before = await available(sessionmaker, sku)
    created = await requested(client, order, [(sku, 1)])

    received, rejected = await asyncio.gather(
        receive(client, admin, created["id"]), reject(client, admin, created["id"])
    )

    assert sorted([received.status, rejected.status]) in ([202, 409], [200, 409])
    [stored] = await stored_returns(sessionmaker, order.id)
    if received.status == 202:
        assert stored.status == "RECEIVED" and (await problem(rejected, 409))["return_status"] == "RECEIVED"
        assert await available(sessionmaker, sku) == before + 1
    else:
        assert stored.status == "REJECTED" and (await problem(received, 409))["return_status"] == "REJECTED"
        assert await available(sessionmaker, sku) == before
        assert await refund_messages(sessionmaker, order.id) == []


async def test_a_return_of_a_payment_refunded_whole_already_is_refunded_at_once(
    client, admin, settings, runtime, sessionmaker, psp_url
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(2, 1000)])
    created = await requested(client, order, [(order.skus[0], 1)])
    # The operator refunded the whole payment meanwhile, and the provider confirmed it.
    async with runtime.uow() as uow:
        locked = await uow.lock_order(order.id)
        assert locked is not None and locked.payment is not None
        whole = await start_refund(uow, locked, locked.payment, reason="goodwill")
        await uow.commit()
    message = {"order_id": order.id, "payment_id": whole.payment_id, "refund_id": whole.id}
    assert await confirm_refund(runtime, sessionmaker, psp_url, message) == SettleOutcome.REFUNDED

    response = await receive(client, admin, created["id"])

    assert response.status == 202, await response.text()
    body = await response.json()
    assert (body["status"], body["refund_id"], body["restocked"]) == ("REFUNDED", None, True)
    stored = await load_order(sessionmaker, order.id)
    assert [h.note for h in stored.history][-2:] == [
        "return received",
        "return refunded: nothing was left to refund",
    ]
    assert len(await refunds(sessionmaker, stored.payment.id)) == 1
    assert await refund_messages(sessionmaker, order.id) == []
    assert (stored.payment.status, stored.payment.refunded_cents) == ("REFUNDED", 2000)


# -- archiving ------------------------------------------------------------------------------------


async def archived(sessionmaker, order_id: str) -> bool:
    """Archive everything due now; whether ``order_id`` has left the hot tables."""
    await archive_finished(sessionmaker, older_than_seconds=0)
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).where(Order.id == order_id)) == 0


async def test_an_order_is_archived_only_once_its_returns_and_their_refunds_are_settled(
    client, admin, settings, runtime, sessionmaker, psp_url
):
    order = await delivered(client, admin, settings, runtime, sessionmaker, [(3, 1000)])
    sku = order.skus[0]
    rejected = await requested(client, order, [(sku, 1)])
    assert (await reject(client, admin, rejected["id"])).status == 200
    created = await requested(client, order, [(sku, 2)])

    assert not await archived(sessionmaker, order.id)  # REQUESTED: the operator will still act on it
    assert (await receive(client, admin, created["id"])).status == 202
    assert not await archived(sessionmaker, order.id)  # RECEIVED, its refund not even asked for yet
    [message] = await refund_messages(sessionmaker, order.id)
    assert await refund_payment(runtime, **message)
    assert not await archived(sessionmaker, order.id)  # asked for, not confirmed

    assert await confirm_refund(runtime, sessionmaker, psp_url, message) == SettleOutcome.REFUNDED
    shown = await (await client.get(f"/orders/{order.id}", headers=order.auth)).json()
    assert [r["status"] for r in shown["returns"]] == ["REJECTED", "REFUNDED"]
    assert await archived(sessionmaker, order.id)

    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).where(orders_archive.c.id == order.id)) == 1
        assert await session.scalar(select(func.count()).where(returns_archive.c.order_id == order.id)) == 2
    seen = await (await client.get(f"/orders/{order.id}", headers=order.auth)).json()
    assert seen["archived"] is True and seen["returns"] == shown["returns"]
    assert (await (await client.get(f"/orders/{order.id}/returns", headers=admin)).json())[
        "returns"
    ] == shown["returns"]
    one = await client.get(f"/returns/{created['id']}", headers=order.auth)
    assert one.status == 200 and (await one.json())["status"] == "REFUNDED"
    # Archived returns change no more; repeating what was done answers as before.
    again = await receive(client, admin, created["id"])
    assert again.status == 202 and (await again.json())["status"] == "REFUNDED"
    await problem(await reject(client, admin, created["id"]), 409, "illegal-return-move")
    await problem(await ask(client, order, [(sku, 1)]), 409, "not-returnable")
    assert await drift_of(sessionmaker, [sku]) == [0]
    await assert_invariants(sessionmaker)
