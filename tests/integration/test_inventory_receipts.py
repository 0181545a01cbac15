"""Stock receipts and the reconciliation's repair go through models.inventory, the one module that
changes ``available`` (the gateway's ``POST /items/{sku}/stock`` calls :func:`book_receipt`)."""

from __future__ import annotations

from sqlalchemy import func, select, update

from models.inventory import StockLevel, book_receipt, repair_available
from models.tables import Item, Stock, StockReceipt
from tests.support.factories import available, make_item, unique
from tests.support.scenarios import assert_invariants, awaiting_payment


async def receipts(sessionmaker, sku: str) -> list[int]:
    async with sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(StockReceipt.quantity).where(StockReceipt.sku == sku).order_by(StockReceipt.id)
                )
            ).all()
        )


async def test_a_receipt_is_recorded_and_adds_to_available_and_received(engine, sessionmaker):
    sku = await make_item(sessionmaker, stock=3)

    async with engine.begin() as connection:
        level = await book_receipt(connection, sku, 4)

    assert level == StockLevel(available=7, received=7)
    assert await receipts(sessionmaker, sku) == [3, 4]
    assert await available(sessionmaker, sku) == 7


async def test_a_receipt_while_stock_is_held_keeps_the_ledger_balanced(runtime, engine, sessionmaker):
    _, sku = await awaiting_payment(runtime, sessionmaker, stock=5, quantity=2)

    async with engine.begin() as connection:
        level = await book_receipt(connection, sku, 10)

    assert level == StockLevel(available=13, received=15)
    await assert_invariants(sessionmaker)


async def test_an_item_without_a_stock_row_gets_one(engine, sessionmaker):
    sku = unique("SKU")
    async with sessionmaker() as session, session.begin():
        session.add(Item(sku=sku, name="Seeded", price_cents=100, currency="USD"))

    async with engine.begin() as connection:
        level = await book_receipt(connection, sku, 5)

    assert level == StockLevel(available=5, received=5)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Stock).where(Stock.sku == sku)) == 1
    assert await receipts(sessionmaker, sku) == [5]


async def test_a_rolled_back_receipt_leaves_nothing(engine, sessionmaker):
    sku = await make_item(sessionmaker, stock=2)

    async with engine.connect() as connection:
        await book_receipt(connection, sku, 4)
        await connection.rollback()

    assert await available(sessionmaker, sku) == 2
    assert await receipts(sessionmaker, sku) == [2]


async def test_repair_sets_available_back_to_what_the_ledger_says(engine, sessionmaker):
    sku = await make_item(sessionmaker, stock=6)
    async with sessionmaker() as session, session.begin():  # drift: two units lost
        await session.execute(update(Stock).where(Stock.sku == sku).values(available=4))

    async with engine.begin() as connection:
        await repair_available(connection, sku, 6)

    assert await available(sessionmaker, sku) == 6
    await assert_invariants(sessionmaker)
