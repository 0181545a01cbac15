"""``PATCH /orders/{id}``: a new shipping address until the order ships, noted in its history and
announced (email and ``order.updated`` event) in the same transaction."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from actors.notify import send_notification
from gateway.openapi.spec import build_spec
from models.archive import archive_finished
from models.state import NotificationStatus, OrderStatus, Reason
from models.tables import OutboxMessage
from tests.integration.test_openapi import conforms
from tests.support.gateway_calls import customer, move, place

S, R = OrderStatus, Reason
PROBLEMS = "https://orders.example/problems/"
NOTE = "address_changed"
PLACED = [(S.AWAITING_PAYMENT, None), (S.PLACED, None)]
SHIPPED = [*PLACED, (S.SHIPPED, None)]


def address(line1: str = "2 Side St") -> dict:
    return {"line1": line1, "city": "Shelbyville", "postcode": "54321", "country": "US"}


async def updated_rows(sessionmaker, order_id: str) -> tuple[list[dict], list[OutboxMessage]]:
    """The ``order.updated`` notify messages' arguments and domain events in the order's outbox."""
    async with sessionmaker() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.order_id == order_id)
                .order_by(OutboxMessage.created_at)
            )
        ).all()
    notifies = [
        r.kwargs for r in rows if r.actor_name == "notify" and r.kwargs["event_type"] == "order.updated"
    ]
    events = [r for r in rows if r.routing_key == "order.updated"]
    return notifies, events


def notes(order: dict) -> list[dict]:
    return [entry for entry in order["history"] if entry["note"] == NOTE]


async def test_the_owner_changes_the_address_and_the_history_notes_it(client, admin):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    before = await (await client.get(f"/orders/{order_id}", headers=auth)).json()

    response = await client.patch(f"/orders/{order_id}", headers=auth, json={"shipping_address": address()})

    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert (body["id"], body["status"], body["shipping_address"]) == (order_id, "PENDING", address())
    # The note repeats the status: the entry records an event that did not change it.
    assert [(h["status"], h["reason"], h["note"]) for h in body["history"]] == [
        ("PENDING", None, None),
        ("PENDING", None, NOTE),
    ]
    assert body["updated_at"] == body["history"][-1]["at"] and body["updated_at"] >= before["updated_at"]
    assert await (await client.get(f"/orders/{order_id}", headers=auth)).json() == body


async def test_the_operator_may_change_the_address_of_a_placed_order(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    await move(sessionmaker, order_id, PLACED)

    response = await client.patch(
        f"/orders/{order_id}", headers=admin, json={"shipping_address": address("9 Depot Rd")}
    )

    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["status"], body["shipping_address"]) == ("PLACED", address("9 Depot Rd"))
    assert [(h["status"], h["note"]) for h in notes(body)] == [("PLACED", NOTE)]
    seen = await (await client.get(f"/orders/{order_id}", headers=auth)).json()
    assert seen["shipping_address"] == address("9 Depot Rd")


async def test_another_customers_order_is_not_found_and_stays_as_it_was(client, admin, sessionmaker):
    owner, stranger = await customer(client), await customer(client)
    order_id = await place(client, admin, owner)
    before = await (await client.get(f"/orders/{order_id}", headers=owner)).json()
    change = {"shipping_address": address()}

    theirs = await client.patch(f"/orders/{order_id}", headers=stranger, json=change)
    anonymous = await client.patch(f"/orders/{order_id}", json=change)
    unknown = await client.patch(f"/orders/{uuid.uuid4().hex}", headers=owner, json=change)
    garbage = await client.patch(f"/orders/{'x' * 40}", headers=admin, json=change)

    assert theirs.status == 404 and theirs.content_type == "application/problem+json"
    assert "among your orders" in (await theirs.json())["detail"]
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert (unknown.status, garbage.status) == (404, 404)
    assert await (await client.get(f"/orders/{order_id}", headers=owner)).json() == before
    assert await updated_rows(sessionmaker, order_id) == ([], [])


async def test_too_late_once_shipped_delivered_cancelled_or_rejected(client, admin, sessionmaker):
    auth = await customer(client)
    cases = [
        (SHIPPED, "SHIPPED", "shipped"),
        ([*SHIPPED, (S.DELIVERED, None)], "DELIVERED", "delivered"),
        ([(S.CANCELLED, R.CUSTOMER_CANCELLED)], "CANCELLED", "cancelled"),
        ([(S.REJECTED, R.OUT_OF_STOCK)], "REJECTED", "rejected"),
    ]
    for steps, status, why in cases:
        order_id = await place(client, admin, auth)
        await move(sessionmaker, order_id, steps)
        before = await (await client.get(f"/orders/{order_id}", headers=auth)).json()

        for headers in (auth, admin):
            response = await client.patch(
                f"/orders/{order_id}", headers=headers, json={"shipping_address": address()}
            )

            assert response.status == 409, (status, await response.text())
            assert response.content_type == "application/problem+json"
            problem = await response.json()
            assert problem["type"] == PROBLEMS + "address-not-changeable"
            assert (problem["status"], problem["order_status"]) == (409, status)
            assert problem["title"] and why in problem["detail"]
        # The refusal leaves the order as it was and announces nothing.
        assert await (await client.get(f"/orders/{order_id}", headers=auth)).json() == before
        assert await updated_rows(sessionmaker, order_id) == ([], [])


async def test_an_archived_order_is_too_late(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    await move(sessionmaker, order_id, [(S.CANCELLED, R.CUSTOMER_CANCELLED)])
    await archive_finished(sessionmaker, older_than_seconds=0)
    assert (await (await client.get(f"/orders/{order_id}", headers=auth)).json())["archived"] is True

    response = await client.patch(f"/orders/{order_id}", headers=auth, json={"shipping_address": address()})

    assert response.status == 409
    problem = await response.json()
    assert problem["type"] == PROBLEMS + "address-not-changeable" and "archived" in problem["detail"]
    assert problem["order_status"] == "CANCELLED"


async def test_bodies_that_are_no_address_change_are_refused(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    before = await (await client.get(f"/orders/{order_id}", headers=auth)).json()
    cases = [
        (b"", 400, "malformed-json", None),
        (b"{not json", 400, "malformed-json", None),
        (b"{}", 422, "invalid-request", "shipping_address"),
        (b'{"shipping_address": null}', 422, "invalid-request", "shipping_address"),
        (b'{"shipping_address": "2 Side St, Shelbyville"}', 422, "invalid-request", "shipping_address"),
        (b'{"shipping_address": ["2 Side St"]}', 422, "invalid-request", "shipping_address"),
        (b'["2 Side St"]', 422, "invalid-request", "body"),
        (
            b'{"shipping_address": {"line1": "2 Side St"}, "status": "SHIPPED"}',
            422,
            "invalid-request",
            "status",
        ),
        (
            b'{"shipping_address": {"line1": "' + b"x" * 3000 + b'"}}',
            422,
            "invalid-request",
            "shipping_address",
        ),
    ]
    for raw, status, kind, field in cases:
        response = await client.patch(
            f"/orders/{order_id}", headers={**auth, "Content-Type": "application/json"}, data=raw
        )

        assert response.status == status, (raw, await response.text())
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        assert problem["type"] == PROBLEMS + kind, raw
        assert problem.get("field") == field, raw
    assert await (await client.get(f"/orders/{order_id}", headers=auth)).json() == before
    assert await updated_rows(sessionmaker, order_id) == ([], [])


async def test_null_and_wrong_kinds_are_refused_in_words_a_client_understands(client, admin):
    auth = await customer(client)
    order_id = await place(client, admin, auth)

    async def detail(body) -> str:
        response = await client.patch(f"/orders/{order_id}", headers=auth, json=body)
        assert response.status == 422
        return (await response.json())["detail"]

    assert await detail({}) == "shipping_address: is required"
    null = await detail({"shipping_address": None})
    assert null.startswith("shipping_address: must be an address object") and "not removed" in null
    assert await detail({"shipping_address": 7}) == "shipping_address: must be a JSON object"
    assert await detail({"shipping_address": {}, "note": "x"}) == "note: is not a known field"


async def test_a_change_enqueues_its_email_and_its_domain_event(client, admin, sessionmaker, settings):
    auth = await customer(client)
    order_id = await place(client, admin, auth)

    changed = await (
        await client.patch(f"/orders/{order_id}", headers=auth, json={"shipping_address": address()})
    ).json()

    notifies, events = await updated_rows(sessionmaker, order_id)
    [notify] = notifies
    assert set(notify) == {"order_id", "event_type", "occurrence"}
    assert (notify["order_id"], notify["event_type"]) == (order_id, "order.updated") and notify["occurrence"]
    [event] = events
    assert (event.exchange, event.routing_key) == (settings.events_exchange, "order.updated")
    assert event.kwargs["type"] == "order.updated" and event.kwargs["event_id"]
    # The event shows the order as committed: the new address and the note.
    assert event.kwargs["order"]["shipping_address"] == address()
    assert event.kwargs["order"]["history"][-1]["note"] == NOTE
    assert event.kwargs["order"]["history"] == changed["history"]


async def test_two_changes_are_two_emails(client, admin, sessionmaker, mailing, smtp):
    auth = await customer(client)
    order_id = await place(client, admin, auth)

    for line1 in ("2 Side St", "3 Side St"):
        response = await client.patch(
            f"/orders/{order_id}", headers=auth, json={"shipping_address": address(line1)}
        )
        assert response.status == 200

    notifies, events = await updated_rows(sessionmaker, order_id)
    assert len(notifies) == 2 and len({n["occurrence"] for n in notifies}) == 2
    assert [e.kwargs["order"]["shipping_address"]["line1"] for e in events] == ["2 Side St", "3 Side St"]
    assert len({e.kwargs["event_id"] for e in events}) == 2
    # The notify step sends each occurrence once, as mails a client keeps apart.
    for notify in notifies:
        assert await send_notification(mailing, **notify) == NotificationStatus.SENT
        assert await send_notification(mailing, **notify) is None
    sent = smtp.recorder.for_order(order_id)
    assert [m["X-Order-Event"] for m in sent] == ["order.updated", "order.updated"]
    assert len({m["Message-ID"] for m in sent}) == 2


async def test_the_same_address_again_changes_nothing(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    change = {"shipping_address": address()}

    first = await client.patch(f"/orders/{order_id}", headers=auth, json=change)
    again = await client.patch(f"/orders/{order_id}", headers=auth, json=change)

    assert (first.status, again.status) == (200, 200)
    # A retried PATCH (its answer lost) is answered as the order is, with no second note or email.
    assert await again.json() == await first.json()
    assert len(notes(await again.json())) == 1
    notifies, events = await updated_rows(sessionmaker, order_id)
    assert (len(notifies), len(events)) == (1, 1)


async def test_two_changes_at_once_both_land_one_after_the_other(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    await move(sessionmaker, order_id, PLACED)

    responses = await asyncio.gather(
        *(
            client.patch(f"/orders/{order_id}", headers=headers, json={"shipping_address": address(line1)})
            for headers, line1 in ((auth, "2 Side St"), (admin, "3 Side St"))
        )
    )

    assert [r.status for r in responses] == [200, 200]
    bodies = [await r.json() for r in responses]
    # They took turns on the order's lock: the second saw the first's note and added its own.
    first, last = sorted(bodies, key=lambda body: len(notes(body)))
    assert (len(notes(first)), len(notes(last))) == (1, 2)
    final = await (await client.get(f"/orders/{order_id}", headers=auth)).json()
    assert final["shipping_address"] == last["shipping_address"]
    assert final["shipping_address"]["line1"] in ("2 Side St", "3 Side St")
    assert [(h["status"], h["note"]) for h in notes(final)] == [("PLACED", NOTE), ("PLACED", NOTE)]
    notifies, events = await updated_rows(sessionmaker, order_id)
    assert len({n["occurrence"] for n in notifies}) == 2 and len(events) == 2


async def test_answers_fit_the_openapi_document(client, admin, sessionmaker):
    spec = build_spec()
    auth = await customer(client)
    order_id = await place(client, admin, auth)
    shipped = await place(client, admin, auth)
    await move(sessionmaker, shipped, SHIPPED)
    change = {"shipping_address": address()}

    changed = await conforms(spec, await client.patch(f"/orders/{order_id}", headers=auth, json=change))
    assert changed["shipping_address"] == address()
    await conforms(spec, await client.patch(f"/orders/{shipped}", headers=auth, json=change))
    await conforms(
        spec, await client.patch(f"/orders/{order_id}", headers=auth, json={"shipping_address": None})
    )
    await conforms(spec, await client.patch(f"/orders/{order_id}", headers=auth, data=b"{not json"))
    await conforms(spec, await client.patch(f"/orders/{uuid.uuid4().hex}", headers=auth, json=change))
    await conforms(spec, await client.patch(f"/orders/{order_id}", json=change))
