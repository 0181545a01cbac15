"""Customers and catalogue for the scenarios.

Accounts are written straight to the database in bulk and their bearer tokens are issued the way
``POST /auth/token`` issues them (the fleet's TOKEN_SECRET): signing up thousands of customers
through argon2 would measure password hashing, not orders. Items and stock go through the admin
API like any shop's back office.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from config import Settings
from gateway.http.auth import issue_token
from models.clock import utcnow
from models.tables import Account, Item, Stock, StockReceipt

BATCH = 2000


async def create_accounts(engine: AsyncEngine, count: int) -> list[str]:
    """``count`` accounts (no usable password: they only ever use issued tokens); their ids."""
    now = utcnow()
    run = uuid.uuid4().hex[:6]
    rows = [
        {
            "id": uuid.uuid4().hex,
            "email": f"bench-{run}-{i}@example.com",
            "name": f"Bench customer {i}",
            "password_hash": "!bench",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    async with engine.begin() as connection:
        for start in range(0, len(rows), BATCH):
            await connection.execute(Account.__table__.insert(), rows[start : start + BATCH])
    return [row["id"] for row in rows]


def tokens_for(settings: Settings, account_ids: list[str]) -> list[str]:
    return [issue_token(settings, account_id).access_token for account_id in account_ids]


async def create_items(
    client: aiohttp.ClientSession,
    gateway_url: str,
    admin_token: str,
    *,
    count: int,
    stock: int,
    prefix: str,
    price_cents: int = 1500,
) -> list[str]:
    """``count`` items with ``stock`` units each, through the admin API; their SKUs."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    run = uuid.uuid4().hex[:6].upper()

    async def one(i: int) -> str:
        sku = f"{prefix}-{run}-{i}"
        async with client.post(
            f"{gateway_url}/items",
            headers=headers,
            json={"sku": sku, "name": f"Bench item {sku}", "price_cents": price_cents},
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"POST /items answered {response.status}: {await response.text()}")
        async with client.post(
            f"{gateway_url}/items/{sku}/stock", headers=headers, json={"quantity": stock}
        ) as response:
            if response.status != 201:
                raise RuntimeError(
                    f"POST /items/{sku}/stock answered {response.status}: {await response.text()}"
                )
        return sku

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def create_items_sql(
    engine: AsyncEngine, *, received: dict[str, int], available: int, price_cents: int = 1500
) -> list[str]:
    """Items straight in the database: ``received[sku]`` units booked in, ``available`` of them on the
    shelf (the caller holds the rest, so received = available + held stays true)."""
    now = utcnow()
    skus = list(received)
    async with engine.begin() as connection:
        await connection.execute(
            Item.__table__.insert(),
            [
                {
                    "sku": sku,
                    "name": f"Bench item {sku}",
                    "price_cents": price_cents,
                    "currency": "USD",
                    "created_at": now,
                }
                for sku in skus
            ],
        )
        await connection.execute(
            Stock.__table__.insert(),
            [
                {"sku": sku, "available": available, "received": received[sku], "committed_archived": 0}
                for sku in skus
            ],
        )
        await connection.execute(
            StockReceipt.__table__.insert(),
            [{"sku": sku, "quantity": received[sku], "received_at": now} for sku in skus],
        )
    return skus
