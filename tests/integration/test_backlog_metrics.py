"""The gauges the alerts read from ``GET /metrics``: how late the outbox and the holds are, and the
latest stock reconciliation.

The run's database is shared with other tests, which leave unsent outbox rows and unreleased holds
behind: each test changes one row of its own and checks the gauges move by it.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from actors.expire import expire_hold
from actors.reserve import reserve_stock
from models.clock import utcnow
from models.tables import Order, OutboxMessage, ReconciliationReport, ReservedStock
from tests.support.factories import make_account, make_item, make_order

#: Older than anything another test of the run can have left behind.
LONG_AGO = timedelta(days=10)


async def scrape(client) -> dict[str, float]:
    """The gateway's unlabelled samples by name."""
    response = await client.get("/metrics")
    assert response.status == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
        if not sample.labels
    }


async def test_the_oldest_unsent_outbox_message_gives_the_backlog_its_age(client, sessionmaker):
    async with sessionmaker() as session, session.begin():
        row = OutboxMessage(
            queue_name="reserve", actor_name="reserve", kwargs={}, created_at=utcnow() - LONG_AGO
        )
        session.add(row)
    waiting = await scrape(client)

    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == row.id).values(sent_at=utcnow())
        )
    sent = await scrape(client)

    assert waiting["orders_outbox_oldest_unsent_seconds"] >= LONG_AGO.total_seconds()
    assert sent["orders_outbox_oldest_unsent_seconds"] < LONG_AGO.total_seconds()
    assert sent["orders_outbox_unsent"] == waiting["orders_outbox_unsent"] - 1


async def held_order(runtime, sessionmaker, quantity: int) -> str:
    """An order AWAITING_PAYMENT whose units are held, as `reserve` leaves it."""
    sku = await make_item(sessionmaker, stock=5)
    order_id = await make_order(sessionmaker, await make_account(sessionmaker), {sku: quantity})
    assert await reserve_stock(runtime, order_id) == "AWAITING_PAYMENT"
    return order_id


async def expire_long_ago(sessionmaker, order_id: str) -> None:
    """Move the order's hold expiry far into the past, as if its `expire` message had been lost."""
    expired = utcnow() - LONG_AGO
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(ReservedStock).where(ReservedStock.order_id == order_id).values(expires_at=expired)
        )
        await session.execute(update(Order).where(Order.id == order_id).values(hold_expires_at=expired))


async def test_holds_past_their_expiry_are_counted_until_released(client, runtime, sessionmaker):
    order_id = await held_order(runtime, sessionmaker, 2)
    await expire_long_ago(sessionmaker, order_id)
    overdue = await scrape(client)

    assert await expire_hold(runtime, order_id) == "CANCELLED"
    released = await scrape(client)

    assert overdue["orders_holds_overdue_seconds"] >= LONG_AGO.total_seconds()
    assert released["orders_holds_overdue_seconds"] < LONG_AGO.total_seconds()
    assert released["orders_holds_overdue"] == overdue["orders_holds_overdue"] - 1
    assert released["orders_holds_pending_units"] == overdue["orders_holds_pending_units"] - 2


async def test_a_hold_not_yet_due_is_not_overdue(client, runtime, sessionmaker):
    before = await scrape(client)
    order_id = await held_order(runtime, sessionmaker, 1)
    after = await scrape(client)

    # Ended, so that the run's later invariant checks find no order past its deadline.
    await expire_long_ago(sessionmaker, order_id)
    assert await expire_hold(runtime, order_id) == "CANCELLED"

    assert after["orders_holds_pending_units"] == before["orders_holds_pending_units"] + 1
    assert after["orders_holds_overdue"] == before["orders_holds_overdue"]


async def test_the_latest_reconciliation_gives_the_drifting_skus_and_when_it_ran(client, sessionmaker):
    found_at = utcnow().replace(microsecond=0)
    async with sessionmaker() as session, session.begin():
        session.add(
            ReconciliationReport(
                skus_checked=9, drift_count=2, repaired=False, details=[], created_at=found_at
            )
        )
    drifting = await scrape(client)

    async with sessionmaker() as session, session.begin():
        session.add(ReconciliationReport(skus_checked=9, drift_count=2, repaired=True, details=[]))
    repaired = await scrape(client)

    assert drifting["orders_reconciliation_drifting_skus"] == 2
    assert (
        drifting["orders_reconciliation_last_run_timestamp_seconds"]
        == found_at.replace(tzinfo=UTC).timestamp()
    )
    assert repaired["orders_reconciliation_drifting_skus"] == 0
    assert (
        repaired["orders_reconciliation_last_run_timestamp_seconds"]
        >= found_at.replace(tzinfo=UTC).timestamp()
    )
