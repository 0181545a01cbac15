"""Archive moves finished orders out of the hot tables; reconciliation still balances; drift is found."""

from __future__ import annotations

from sqlalchemy import func, select, update

from actors.cancel import cancel_order
from actors.reconcile import reconcile_stock
from actors.refund import refund_payment
from actors.settle import SettleOutcome, settle_payment
from messaging.live_status import create_redis
from models.archive import archive_finished, load_archived_order
from models.invariants import stock_ledgers
from models.reconcile import reconcile
from models.state import OrderStatus, PaymentStatus, Reason
from models.tables import Order, OrderLine, Payment, ReconciliationReport, ReservedStock, Stock
from schedules.election import elected, fleet_of, resign
from tests.support.factories import available, load_order
from tests.support.scenarios import assert_invariants, awaiting_payment, provider_event


async def delivered(runtime, sessionmaker) -> tuple[str, str]:
    from models.repository import lock_order
    from models.state import OrderStatus

    order_id, sku = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)
    async with runtime.uow() as uow:
        order = await lock_order(uow.session, order_id)
        uow.move(order, OrderStatus.SHIPPED)
        uow.move(order, OrderStatus.DELIVERED)
        await uow.commit()
    return order_id, sku


async def count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_finished_orders_move_to_the_archive_and_the_ledger_still_balances(runtime, sessionmaker):
    sold_id, sold_sku = await delivered(runtime, sessionmaker)
    cancelled_id, cancelled_sku = await awaiting_payment(runtime, sessionmaker)
    await cancel_order(runtime, cancelled_id, "customer_cancelled")
    open_id, _ = await awaiting_payment(runtime, sessionmaker)

    moved = []
    total = await archive_finished(sessionmaker, older_than_seconds=0, batch_size=1, progress=moved.append)

    assert total >= 2 and set(moved) == {1}
    for order_id in (sold_id, cancelled_id):
        assert await count(sessionmaker, Order, Order.id == order_id) == 0
        assert await count(sessionmaker, OrderLine, OrderLine.order_id == order_id) == 0
        assert await count(sessionmaker, ReservedStock, ReservedStock.order_id == order_id) == 0
    assert await count(sessionmaker, Order, Order.id == open_id) == 1
    async with sessionmaker() as session:
        archived = await load_archived_order(session, sold_id)
        [ledger] = await stock_ledgers(session, [sold_sku])
    assert archived.status == "DELIVERED" and [h.status for h in archived.history][-1] == "DELIVERED"
    assert archived.payment.status == "SUCCEEDED" and [line.quantity for line in archived.lines] == [2]
    assert (ledger.committed, ledger.committed_archived, ledger.drift) == (0, 2, 0)
    assert await available(sessionmaker, sold_sku) == 3 and await available(sessionmaker, cancelled_sku) == 5
    await assert_invariants(sessionmaker)


async def archived(sessionmaker, order_id: str) -> bool:
    """Archive everything due now; whether ``order_id`` has left the hot tables."""
    await archive_finished(sessionmaker, older_than_seconds=0)
    return await count(sessionmaker, Order, Order.id == order_id) == 0


async def test_a_cancelled_order_is_archived_only_once_its_refund_has_settled(runtime, sessionmaker):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    await settle_payment(runtime, await provider_event(sessionmaker, order_id, "payment.succeeded"), order_id)
    await cancel_order(runtime, order_id, "customer_cancelled")
    payment = (await load_order(sessionmaker, order_id)).payment
    assert payment.status == PaymentStatus.REFUND_PENDING

    assert not await archived(sessionmaker, order_id)  # the refund is not even asked for yet
    refund_id = await refund_payment(runtime, order_id=order_id, payment_id=payment.id)
    assert not await archived(sessionmaker, order_id)  # asked for, not confirmed

    event = await provider_event(sessionmaker, order_id, "refund.succeeded", refund_id=refund_id)
    assert await settle_payment(runtime, event, order_id) == SettleOutcome.REFUNDED
    assert await archived(sessionmaker, order_id)
    async with sessionmaker() as session:
        order = await load_archived_order(session, order_id)
    assert (order.status, order.payment.status) == (OrderStatus.CANCELLED, PaymentStatus.REFUNDED)
    await assert_invariants(sessionmaker)


async def test_a_finished_order_whose_payment_the_provider_has_not_decided_is_not_archived(
    runtime, sessionmaker
):
    order_id, _ = await awaiting_payment(runtime, sessionmaker)  # PENDING at the provider
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(_status=OrderStatus.CANCELLED.value, reason=Reason.ADMIN_CANCELLED.value)
        )
    async with sessionmaker() as session:
        payment = await session.scalar(select(Payment).where(Payment.order_id == order_id))
    assert payment.status == PaymentStatus.PENDING and payment.provider_payment_id

    assert not await archived(sessionmaker, order_id)

    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment).where(Payment.id == payment.id).values(_status=PaymentStatus.CANCELLED.value)
        )
    assert await archived(sessionmaker, order_id)


async def test_reconcile_finds_injected_drift_and_repair_fixes_only_that(runtime, sessionmaker):
    _, sku = await awaiting_payment(runtime, sessionmaker)
    async with sessionmaker() as session, session.begin():
        await session.execute(update(Stock).where(Stock.sku == sku).values(available=Stock.available - 2))

    async with sessionmaker() as session, session.begin():
        _, drifts = await reconcile(session, repair=False)
    mine = [d for d in drifts if d.ledger.sku == sku]
    assert [(d.ledger.drift, d.repaired) for d in mine] == [(2, False)]
    assert "would set available 1 -> 3" in mine[0].describe()
    assert await available(sessionmaker, sku) == 1

    assert await reconcile_stock(runtime, repair=True) >= 1
    assert await available(sessionmaker, sku) == 3
    async with sessionmaker() as session:
        report = await session.scalar(select(ReconciliationReport).order_by(ReconciliationReport.id.desc()))
        _, drifts = await reconcile(session)
    assert report.repaired and any(d["sku"] == sku and d["drift"] == 2 for d in report.details)
    assert sku not in [d.ledger.sku for d in drifts]


async def test_one_scheduler_is_elected_per_tick_and_all_run_without_redis(settings):
    client = create_redis(settings.redis_url)
    fleet, job = fleet_of(settings.database_url), "test-job"
    try:
        votes = [await elected(client, fleet, job, hold_seconds=5) for _ in range(3)]
    finally:
        await client.delete(f"scheduler:lock:{fleet}:{job}")
        await client.aclose()
    assert votes == [True, False, False]

    down = create_redis("redis://127.0.0.1:1/0")
    try:
        assert await elected(down, fleet, job, hold_seconds=5) is True
    finally:
        await down.aclose()


async def test_fleets_sharing_a_redis_database_elect_their_own_schedulers(settings):
    client = create_redis(settings.redis_url)
    ours = fleet_of(settings.database_url)
    theirs = fleet_of(settings.database_url + "_other")
    try:
        assert await elected(client, theirs, "archive", hold_seconds=60)
        # Another fleet's scheduler holding its lock does not make ours skip the job.
        assert await elected(client, ours, "archive", hold_seconds=60)
    finally:
        await client.delete(f"scheduler:lock:{ours}:archive", f"scheduler:lock:{theirs}:archive")
        await client.aclose()


async def test_a_stopping_scheduler_hands_its_locks_over_at_once(settings):
    client = create_redis(settings.redis_url)
    fleet = fleet_of(settings.database_url)
    try:
        assert await elected(client, fleet, "reconcile", hold_seconds=300)
        await resign(client, fleet, ["reconcile"])
        # The next scheduler's tick wins without waiting out the 300 s hold.
        assert await elected(client, fleet, "reconcile", hold_seconds=300)
    finally:
        await client.delete(f"scheduler:lock:{fleet}:reconcile")
        await client.aclose()


async def test_a_scheduler_does_not_resign_a_lock_it_no_longer_holds(settings):
    client = create_redis(settings.redis_url)
    fleet = fleet_of(settings.database_url)
    key = f"scheduler:lock:{fleet}:sweep"
    try:
        await client.set(key, "another-scheduler", px=60_000)
        await resign(client, fleet, ["sweep"])
        assert await client.get(key) == b"another-scheduler"
    finally:
        await client.delete(key)
        await client.aclose()
