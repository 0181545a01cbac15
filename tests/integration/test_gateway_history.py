"""Orders in history: archived orders stay readable, final and listable; ``GET /orders`` pages newest first.

Orders are archived the way the archive step does it (:func:`models.archive.archive_batch`), with
a cut-off just ahead of now. The database is shared by the whole run, so that also archives other
tests' finished orders; nothing here depends on which those are.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.orders.cursors import Cursor
from models.archive import archive_batch
from models.clock import utcnow
from models.state import OrderStatus, Reason
from models.tables import Order, OutboxMessage, orders_archive
from tests.support.gateway_calls import customer, move, place
from tests.support.polling import eventually

S, R = OrderStatus, Reason
PROBLEMS = "https://orders.example/problems/"
PLACED = [(S.AWAITING_PAYMENT, None), (S.PLACED, None)]
CANCELLED = [(S.CANCELLED, R.CUSTOMER_CANCELLED)]


async def archive(sessionmaker, *order_ids: str) -> None:
    """Archive batches until every one of ``order_ids`` (finished orders) has moved."""
    waiting = set(order_ids)
    while waiting:
        async with sessionmaker() as session, session.begin():
            moved = await archive_batch(session, utcnow() + timedelta(seconds=1))
        assert moved, f"orders {sorted(waiting)} were never due for the archive"
        waiting -= set(moved)


async def delivered(client, admin, sessionmaker, auth) -> str:
    """An order taken through the API, paid as workers would, then shipped and delivered by the operator."""
    order_id = await place(client, admin, auth)
    await move(sessionmaker, order_id, PLACED)
    for step in ("ship", "deliver"):
        response = await client.post(f"/orders/{order_id}/{step}", headers=admin)
        assert response.status == 200, await response.text()
    return order_id


async def cancelled(client, admin, sessionmaker, auth) -> str:
    order_id = await place(client, admin, auth)
    await move(sessionmaker, order_id, CANCELLED)
    return order_id


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return await response.json()


# -- reading one archived order ---------------------------------------------------------------


async def test_archived_order_reads_back_as_it_was_for_owner_and_operator_only(client, admin, sessionmaker):
    owner, stranger = await customer(client), await customer(client)
    order_id = await delivered(client, admin, sessionmaker, owner)
    before = await (await client.get(f"/orders/{order_id}", headers=owner)).json()
    assert before["archived"] is False

    await archive(sessionmaker, order_id)

    async with sessionmaker() as session:
        assert await session.get(Order, order_id) is None
        assert await session.scalar(select(orders_archive.c.id).where(orders_archive.c.id == order_id))
    mine = await client.get(f"/orders/{order_id}", headers=owner)
    assert mine.status == 200, await mine.text()
    after = await mine.json()
    assert after["archived"] is True
    # Items, payment, history and times survive the move unchanged.
    assert {**after, "archived": False} == before
    assert [h["status"] for h in after["history"]] == [
        "PENDING",
        "AWAITING_PAYMENT",
        "PLACED",
        "SHIPPED",
        "DELIVERED",
    ]
    operator = await client.get(f"/orders/{order_id}", headers=admin)
    assert operator.status == 200 and (await operator.json()) == after
    # Another customer cannot tell an archived order of someone else from a missing one.
    theirs = await problem(await client.get(f"/orders/{order_id}", headers=stranger), 404)
    missing = await problem(await client.get(f"/orders/{uuid.uuid4().hex}", headers=stranger), 404)
    assert theirs["title"] == missing["title"] == "Not Found"
    assert (await client.get(f"/orders/{order_id}")).status == 401


async def test_archived_orders_are_final_for_cancel_ship_and_deliver(client, admin, sessionmaker):
    auth = await customer(client)
    done, over = (
        await delivered(client, admin, sessionmaker, auth),
        await cancelled(client, admin, sessionmaker, auth),
    )
    await archive(sessionmaker, done, over)

    refused = await problem(await client.post(f"/orders/{done}/cancel", headers=auth), 409)
    assert refused["type"] == PROBLEMS + "not-cancellable" and refused["order_status"] == "DELIVERED"
    for step in ("ship", "deliver"):
        for order_id, status in ((done, "DELIVERED"), (over, "CANCELLED")):
            moved = await problem(await client.post(f"/orders/{order_id}/{step}", headers=admin), 409)
            assert moved["type"] == PROBLEMS + "illegal-transition" and moved["order_status"] == status
            assert "archived" in moved["detail"]

    # Cancelling what is already cancelled is accepted and changes nothing, archived or not.
    again = await client.post(f"/orders/{over}/cancel", headers=auth)
    assert again.status == 202, await again.text()
    body = await again.json()
    assert (body["id"], body["status"], body["archived"]) == (over, "CANCELLED", True)
    assert again.headers["Location"] == f"/orders/{over}"
    async with sessionmaker() as session:
        queued = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.order_id.in_([done, over]), OutboxMessage.actor_name == "cancel"
                )
            )
        ).all()
    assert queued == []
    # Strangers still get 404, not the final status.
    await problem(await client.post(f"/orders/{over}/cancel", headers=await customer(client)), 404)


async def test_event_stream_of_an_archived_order_is_its_final_status_then_the_end(
    client, admin, sessionmaker
):
    auth = await customer(client)
    order_id = await delivered(client, admin, sessionmaker, auth)
    await archive(sessionmaker, order_id)

    response = await client.get(f"/orders/{order_id}/events", headers=auth)
    assert response.status == 200 and response.content_type == "text/event-stream"
    text = await asyncio.wait_for(response.text(), timeout=10)

    events = [block for block in text.split("\n\n") if block.strip()]
    assert len(events) == 1, text
    name, data = events[0].split("\n")
    assert name == "event: status"
    assert json.loads(data.removeprefix("data: "))["status"] == "DELIVERED"
    await problem(await client.get(f"/orders/{order_id}/events", headers=await customer(client)), 404)


async def test_idempotent_replay_returns_the_order_after_it_was_archived(client, admin, sessionmaker):
    auth = await customer(client)
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    made = await client.post("/items", headers=admin, json={"sku": sku, "name": "Thing", "price_cents": 700})
    assert made.status == 201, await made.text()
    key, body = uuid.uuid4().hex, {"items": [{"sku": sku, "quantity": 2}], "payment": {"method": "redirect"}}
    first = await client.post("/orders", headers={**auth, "Idempotency-Key": key}, json=body)
    assert first.status == 202, await first.text()
    order_id = (await first.json())["id"]
    await move(sessionmaker, order_id, CANCELLED)
    await archive(sessionmaker, order_id)

    replay = await client.post("/orders", headers={**auth, "Idempotency-Key": key}, json=body)

    assert replay.status == 202, await replay.text()
    again = await replay.json()
    assert (again["id"], again["status"], again["archived"]) == (order_id, "CANCELLED", True)
    assert again["items"] == [{"sku": sku, "quantity": 2, "unit_price_cents": 700}]
    assert replay.headers["Location"] == f"/orders/{order_id}"
    # The key stays bound to its body after archiving too.
    other = await client.post(
        "/orders",
        headers={**auth, "Idempotency-Key": key},
        json={**body, "items": [{"sku": sku, "quantity": 3}]},
    )
    assert (await problem(other, 422))["type"] == PROBLEMS + "idempotency-key-reused"


async def test_ship_and_deliver_by_the_operator_announce_email_and_domain_event(
    client, admin, sessionmaker, settings
):
    order_id = await delivered(client, admin, sessionmaker, await customer(client))

    async with sessionmaker() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.order_id == order_id)
                .order_by(OutboxMessage.created_at)
            )
        ).all()
    # Only the order and the event type are asserted, not the notify step's argument names.
    emails = [
        (row.kwargs["order_id"], sorted(value for name, value in row.kwargs.items() if name != "order_id"))
        for row in rows
        if row.actor_name == "notify"
    ]
    events = [row for row in rows if row.exchange]
    assert emails == [(order_id, ["order.shipped"]), (order_id, ["order.delivered"])]
    assert [(e.exchange, e.routing_key, e.kwargs["type"], e.kwargs["order"]["status"]) for e in events] == [
        (settings.events_exchange, "order.shipped", "order.shipped", "SHIPPED"),
        (settings.events_exchange, "order.delivered", "order.delivered", "DELIVERED"),
    ]

    # Published after commit like any other outbox row (the broker of this run is up), and marked
    # sent in the gateway's next batch.
    async def all_marked_sent():
        async with sessionmaker() as session:
            return all(
                await session.scalars(
                    select(OutboxMessage.sent_at).where(OutboxMessage.id.in_([event.id for event in events]))
                )
            )

    await eventually(all_marked_sent, what="the events marked sent")


# -- GET /orders ------------------------------------------------------------------------------


async def list_all(client, headers, **params) -> list[dict]:
    """Every page of ``GET /orders`` with ``params``, following next_cursor; each page checked."""
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/orders", headers=headers, params=query)
        assert response.status == 200, await response.text()
        page = await response.json()
        assert set(page) == {"orders", "next_cursor"}
        pages.append(page["orders"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


def ids(pages: list[list[dict]]) -> list[tuple[str, bool]]:
    return [(order["id"], order["archived"]) for page in pages for order in page]


async def test_list_pages_newest_first_over_hot_and_archived_orders(client, admin, sessionmaker):
    auth, stranger = await customer(client), await customer(client)
    orders = [await place(client, admin, auth) for _ in range(5)]
    for order_id in orders[1:3]:
        await move(sessionmaker, order_id, CANCELLED)
    await archive(sessionmaker, *orders[1:3])
    await move(sessionmaker, orders[3], CANCELLED)  # cancelled after the archive run: still hot
    newest_first = [(order_id, order_id in orders[1:3]) for order_id in reversed(orders)]

    pages = await list_all(client, auth, limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert ids(pages) == newest_first
    assert pages[0][0]["items"] and pages[0][0]["history"] and pages[0][0]["payment"]
    assert ids(await list_all(client, auth)) == newest_first  # default limit: all five on one page
    assert ids(await list_all(client, auth, limit=5)) == newest_first  # exactly full: no further page
    assert await list_all(client, stranger) == [[]]


async def test_list_filters_by_status_across_both_tables(client, admin, sessionmaker):
    auth = await customer(client)
    orders = [await place(client, admin, auth) for _ in range(4)]
    for order_id in orders[:2]:
        await move(sessionmaker, order_id, CANCELLED)
    await archive(sessionmaker, *orders[:2])
    await move(sessionmaker, orders[2], CANCELLED)

    by_page = await list_all(client, auth, status="CANCELLED", limit=2)
    assert [len(page) for page in by_page] == [2, 1]
    assert ids(by_page) == [(orders[2], False), (orders[1], True), (orders[0], True)]
    assert ids(await list_all(client, auth, status="PENDING")) == [(orders[3], False)]
    assert ids(await list_all(client, auth, status="DELIVERED")) == []
    assert ids(await list_all(client, auth, status="")) == ids(await list_all(client, auth))


async def test_operator_lists_every_customers_orders(client, admin, sessionmaker):
    first, second = await customer(client), await customer(client)
    mine = [await place(client, admin, first), await cancelled(client, admin, sessionmaker, second)]
    await archive(sessionmaker, mine[1])

    newest = (await (await client.get("/orders", headers=admin, params={"limit": 100})).json())["orders"]
    assert [(o["id"], o["archived"]) for o in newest[:2]] == [(mine[1], True), (mine[0], False)]
    cancelled_ones = await list_all(client, admin, status="CANCELLED", limit=100)
    assert (mine[1], True) in ids(cancelled_ones) and all(
        order["status"] == "CANCELLED" for page in cancelled_ones for order in page
    )
    # Each customer still sees only their own.
    assert ids(await list_all(client, first)) == [(mine[0], False)]
    assert ids(await list_all(client, second)) == [(mine[1], True)]


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        _b64("not json"),
        _b64('{"a": 1}'),
        _b64("[1, 2]"),
        _b64('["2026-01-01T00:00:00", "x"]'),
        _b64(f'["yesterday", "{"a" * 32}"]'),
        _b64(f'["2026-01-01T00:00:00+02:00", "{"a" * 32}"]'),
        _b64(f'["2026-01-01T00:00:00", "{"a" * 32}", 3]'),
        "A" * 500,
    ],
)
async def test_a_cursor_not_handed_out_is_a_400_problem(client, cursor):
    auth = await customer(client)
    body = await problem(await client.get("/orders", headers=auth, params={"cursor": cursor}), 400)
    assert body["type"] == PROBLEMS + "invalid-cursor" and body["field"] == "cursor"


async def test_any_well_formed_cursor_is_just_a_position(client, admin):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    # Times outside what the database stores are still only positions: before or after everything.
    earliest = Cursor(datetime(1, 1, 1), "0" * 32).encode()
    latest = Cursor(datetime(9999, 12, 31, 23, 59, 59, 999999), "f" * 32).encode()

    assert ids(await list_all(client, auth, cursor=earliest)) == []
    assert ids(await list_all(client, auth, cursor=latest)) == [(order_id, False)]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"status": "SHIPPING"}, "status"),
        ({"status": "placed"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "9" * 30}, "limit"),
    ],
)
async def test_bad_list_parameters_are_422_problems_naming_the_field(client, params, field):
    auth = await customer(client)
    body = await problem(await client.get("/orders", headers=auth, params=params), 422)
    assert body["type"] == PROBLEMS + "invalid-request" and body["field"] == field


async def test_listing_needs_a_token(client):
    assert (await problem(await client.get("/orders"), 401))["status"] == 401
    bad = await client.get("/orders", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status == 401
