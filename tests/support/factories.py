"""Rows the steps work on, written straight to the database the way the gateway writes them."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from models.clock import utcnow
from models.state import OrderStatus, PaymentStatus
from models.tables import (
    Account,
    Item,
    Order,
    OrderHistory,
    OrderLine,
    Payment,
    Stock,
    StockReceipt,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}".upper()


async def make_account(sessionmaker) -> str:
    async with sessionmaker() as session, session.begin():
        account = Account(email=f"{uuid.uuid4().hex}@example.com", name="Test", password_hash="x")
        session.add(account)
    return account.id


async def make_item(sessionmaker, *, stock: int, price_cents: int = 1000, sku: str | None = None) -> str:
    sku = sku or unique("SKU")
    async with sessionmaker() as session, session.begin():
        session.add(Item(sku=sku, name=f"Item {sku}", price_cents=price_cents, currency="USD"))
        await session.flush()
        session.add(Stock(sku=sku, available=stock, received=stock))
        session.add(StockReceipt(sku=sku, quantity=stock))
    return sku


async def make_order(
    sessionmaker,
    account_id: str,
    lines: dict[str, int],
    *,
    method: str = "token",
    token: str | None = "pm_card_ok",
) -> str:
    """A PENDING order with its first payment attempt, as `POST /orders` creates it."""
    async with sessionmaker() as session, session.begin():
        prices = dict(
            (await session.execute(select(Item.sku, Item.price_cents).where(Item.sku.in_(list(lines))))).all()
        )
        total = sum(prices.get(sku, 0) * quantity for sku, quantity in lines.items())
        now = utcnow()
        order = Order(
            account_id=account_id,
            _status=OrderStatus.PENDING.value,
            total_cents=total,
            currency="USD",
            created_at=now,
            updated_at=now,
        )
        order.lines = [
            OrderLine(sku=sku, quantity=q, unit_price_cents=prices.get(sku)) for sku, q in lines.items()
        ]
        order.history = [OrderHistory(status=OrderStatus.PENDING.value, at=now)]
        order.payments = [
            Payment(
                attempt=1,
                method=method,
                token=token,
                amount_cents=total,
                currency="USD",
                _status=PaymentStatus.PENDING.value,
            )
        ]
        order.holds = []
        session.add(order)
    return order.id


async def load_order(sessionmaker, order_id: str) -> Order:
    async with sessionmaker() as session:
        return await session.scalar(
            select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
        )


async def available(sessionmaker, sku: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(Stock.available).where(Stock.sku == sku))
