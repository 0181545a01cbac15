"""``POST /orders/{id}/cancel``: the gateway decides under the row lock and queues the ``cancel`` step."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from models.state import OrderStatus, Reason
from models.tables import OutboxMessage
from tests.support.gateway_calls import customer, move, place

S, R = OrderStatus, Reason
PLACED = [(S.AWAITING_PAYMENT, None), (S.PLACED, None)]
SHIPPED = [*PLACED, (S.SHIPPED, None)]


async def cancel_messages(sessionmaker, order_id: str) -> list[OutboxMessage]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.order_id == order_id, OutboxMessage.actor_name == "cancel"
                    )
                )
            ).all()
        )


async def test_owner_cancel_is_accepted_and_queued_as_customer_cancelled(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)

    response = await client.post(f"/orders/{order_id}/cancel", headers=auth)

    assert response.status == 202, await response.text()
    body = await response.json()
    # The worker changes the status; the answer shows the order as it is now.
    assert (body["id"], body["status"]) == (order_id, "PENDING")
    messages = await cancel_messages(sessionmaker, order_id)
    assert [(m.queue_name, m.kwargs) for m in messages] == [
        ("cancel", {"order_id": order_id, "reason": "customer_cancelled"})
    ]


async def test_admin_cancel_of_a_placed_order_is_queued_as_admin_cancelled(client, admin, sessionmaker):
    order_id = await place(client, admin, await customer(client))
    await move(sessionmaker, order_id, PLACED)

    response = await client.post(f"/orders/{order_id}/cancel", headers=admin)

    assert response.status == 202, await response.text()
    assert (await response.json())["status"] == "PLACED"
    messages = await cancel_messages(sessionmaker, order_id)
    assert [m.kwargs for m in messages] == [{"order_id": order_id, "reason": "admin_cancelled"}]


async def test_others_cannot_cancel_or_even_see_the_order(client, admin, sessionmaker):
    owner, stranger = await customer(client), await customer(client)
    order_id = await place(client, admin, owner)

    theirs = await client.post(f"/orders/{order_id}/cancel", headers=stranger)
    anonymous = await client.post(f"/orders/{order_id}/cancel")
    unknown = await client.post(f"/orders/{uuid.uuid4().hex}/cancel", headers=owner)
    garbage = await client.post(f"/orders/{'x' * 40}/cancel", headers=admin)

    assert theirs.status == 404 and theirs.content_type == "application/problem+json"
    assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert (unknown.status, garbage.status) == (404, 404)
    assert await cancel_messages(sessionmaker, order_id) == []


async def test_shipped_and_delivered_orders_cannot_be_cancelled(client, admin, sessionmaker):
    auth = await customer(client)
    shipped, delivered = await place(client, admin, auth), await place(client, admin, auth)
    await move(sessionmaker, shipped, SHIPPED)
    await move(sessionmaker, delivered, [*SHIPPED, (S.DELIVERED, None)])

    for order_id, status, why in ((shipped, "SHIPPED", "shipped"), (delivered, "DELIVERED", "delivered")):
        response = await client.post(f"/orders/{order_id}/cancel", headers=auth)

        assert response.status == 409
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        assert problem["type"] == "https://orders.example/problems/not-cancellable"
        assert problem["status"] == 409 and problem["order_status"] == status
        assert problem["title"] and why in problem["detail"]
        assert await cancel_messages(sessionmaker, order_id) == []
        # The refusal leaves the order as it was.
        assert (await (await client.get(f"/orders/{order_id}", headers=auth)).json())["status"] == status


async def test_cancelling_an_ended_order_again_changes_nothing(client, admin, sessionmaker):
    auth = await customer(client)
    cancelled, rejected = await place(client, admin, auth), await place(client, admin, auth)
    await move(sessionmaker, cancelled, [(S.CANCELLED, R.CUSTOMER_CANCELLED)])
    await move(sessionmaker, rejected, [(S.REJECTED, R.OUT_OF_STOCK)])

    again = await client.post(f"/orders/{cancelled}/cancel", headers=auth)
    late = await client.post(f"/orders/{rejected}/cancel", headers=admin)

    assert (again.status, late.status) == (202, 202)
    assert ((await again.json())["status"], (await again.json())["reason"]) == (
        "CANCELLED",
        "customer_cancelled",
    )
    assert (await late.json())["status"] == "REJECTED"
    assert await cancel_messages(sessionmaker, cancelled) == []
    assert await cancel_messages(sessionmaker, rejected) == []


async def test_cancel_requested_twice_before_the_worker_runs_is_harmless(client, admin, sessionmaker):
    auth = await customer(client)
    order_id = await place(client, admin, auth)

    first = await client.post(f"/orders/{order_id}/cancel", headers=auth)
    second = await client.post(f"/orders/{order_id}/cancel", headers=auth)

    # Both are accepted; the worker's step is idempotent, so a second message changes nothing.
    assert (first.status, second.status) == (202, 202)
    assert len(await cancel_messages(sessionmaker, order_id)) == 2
