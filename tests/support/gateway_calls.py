"""Helpers for gateway tests: customers and orders made through the API, moves made as workers do."""

from __future__ import annotations

import uuid

from models.repository import lock_order
from models.state import OrderStatus, Reason
from models.unit_of_work import Notifier, UnitOfWork


class NoMessages:
    """A publisher for test transactions that must enqueue nothing."""

    async def publish(self, messages) -> None:
        raise AssertionError(f"unexpected messages: {messages!r}")


async def customer(client) -> dict[str, str]:
    """Sign up a fresh customer; returns the Authorization header of their token."""
    email = f"buyer-{uuid.uuid4().hex[:12]}@example.com"
    created = await client.post(
        "/accounts", json={"email": email, "name": "Buyer", "password": "long password"}
    )
    assert created.status == 201, await created.text()
    token = await (
        await client.post("/auth/token", json={"email": email, "password": "long password"})
    ).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def place(client, admin, auth) -> str:
    """A PENDING order of the customer behind ``auth``, taken through the API."""
    sku = f"SKU-{uuid.uuid4().hex[:12]}"
    created = await client.post(
        "/items", headers=admin, json={"sku": sku, "name": "Thing", "price_cents": 900}
    )
    assert created.status == 201, await created.text()
    response = await client.post(
        "/orders",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "redirect"}},
    )
    assert response.status == 202, await response.text()
    return (await response.json())["id"]


async def move(
    sessionmaker,
    order_id: str,
    steps: list[tuple[OrderStatus, Reason | None]],
    *,
    notifier: Notifier | None = None,
) -> None:
    """Move the order through ``steps`` ((status, reason) pairs) in one transaction, as workers would."""
    async with UnitOfWork(sessionmaker, NoMessages(), notifier) as uow:
        order = await lock_order(uow.session, order_id)
        for status, reason in steps:
            uow.move(order, status, reason)
        await uow.commit()
