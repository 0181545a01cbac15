"""The one-statement order record reads exactly what the ORM mapping reads, types included."""

from __future__ import annotations

from models.order_record import lock_order_record, read_order_record
from models.views import order_json
from tests.support.factories import load_order, make_account, make_item
from tests.support.scenarios import placed_order


def _fields(record, names):
    return [tuple(getattr(item, name) for name in names) for item in record]


async def test_the_record_of_a_placed_order_matches_the_mapped_order(runtime, sessionmaker, engine):
    order_id = await placed_order(runtime, sessionmaker)
    mapped = await load_order(sessionmaker, order_id)
    async with engine.begin() as connection:
        locked = await lock_order_record(connection, order_id)
    async with engine.connect() as connection:
        read = await read_order_record(connection, order_id)

    for record in (locked, read):
        assert order_json(record) == order_json(mapped)
        assert (
            record.account_id,
            record.status,
            record.reason,
            record.total_cents,
            record.currency,
            record.hold_expires_at,
            record.shipping_address,
            record.source,
            record.created_at,
            record.updated_at,
        ) == (
            mapped.account_id,
            mapped.status,
            mapped.reason,
            mapped.total_cents,
            mapped.currency,
            mapped.hold_expires_at,
            mapped.shipping_address,
            mapped.source,
            mapped.created_at,
            mapped.updated_at,
        )
        payment_columns = [
            "id",
            "order_id",
            "attempt",
            "method",
            "token",
            "amount_cents",
            "currency",
            "status",
            "provider_payment_id",
            "checkout_url",
            "provider_refund_id",
            "created_at",
            "updated_at",
        ]
        assert _fields(record.payments, payment_columns) == _fields(mapped.payments, payment_columns)
        hold_columns = ["id", "sku", "quantity", "state", "expires_at", "released_at"]
        assert _fields(record.holds, hold_columns) == _fields(mapped.holds, hold_columns)
        assert [type(value) for value in _fields(record.holds, hold_columns)[0]] == [
            type(value) for value in _fields(mapped.holds, hold_columns)[0]
        ]
        assert _fields(record.history, ["status", "reason", "note", "at"]) == _fields(
            mapped.history, ["status", "reason", "note", "at"]
        )


async def test_lines_come_in_sku_order_and_an_unknown_order_is_none(sessionmaker, engine):
    from tests.support.factories import make_order

    account = await make_account(sessionmaker)
    skus = sorted([await make_item(sessionmaker, stock=3) for _ in range(3)], reverse=True)
    order_id = await make_order(sessionmaker, account, {sku: n + 1 for n, sku in enumerate(skus)})
    async with engine.connect() as connection:
        record = await read_order_record(connection, order_id)
        missing = await read_order_record(connection, "0" * 32)

    assert [line.sku for line in record.lines] == sorted(skus)
    assert {line.sku: line.quantity for line in record.lines} == {sku: n + 1 for n, sku in enumerate(skus)}
    assert missing is None


async def test_locking_the_record_locks_the_order_and_every_child_row(sessionmaker, engine):
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from tests.support.factories import make_order

    account = await make_account(sessionmaker)
    order_id = await make_order(sessionmaker, account, {await make_item(sessionmaker, stock=3): 1})
    async with engine.connect() as holder, engine.connect() as other:
        await holder.begin()
        assert await lock_order_record(holder, order_id) is not None
        for table, key in (
            ("orders", "id"),
            ("order_lines", "order_id"),
            ("payments", "order_id"),
            ("order_history", "order_id"),
        ):
            await other.begin()
            try:
                # NOWAIT: a row another transaction has locked is refused at once.
                await other.execute(
                    text(f"SELECT 1 FROM {table} WHERE {key} = :id FOR UPDATE NOWAIT"), {"id": order_id}
                )
            except OperationalError:
                pass
            else:
                raise AssertionError(f"{table} rows of the order were not locked by the record's read")
            finally:
                await other.rollback()
        await holder.rollback()
