"""4. Expiry at scale: many holds running out across a window, released by delayed messages.

The holds are written straight to the database in bulk, as `reserve` and `pay` would have left
them: orders AWAITING_PAYMENT with one HELD unit each (stock taken from ``available``), a history,
and a redirect payment the provider knows by id (the customer got a checkout page and never
paid). In the same transaction as each chunk of holds go its `expire` outbox rows, delayed until
each hold's ``expires_at`` exactly as `reserve` schedules them; after the commit the real
:class:`messaging.outbox.OutboxPublisher` publishes them with publisher confirms and marks them
sent. From there everything is the fleet's own: its workers keep the delayed messages until due,
run `expire`, which cancels the order (payment_timeout), releases the stock and enqueues `void`
(the provider call), `notify` (the email) and the domain event.

Lateness of a hold = ``reserved_stock.released_at - expires_at``. Writing 50,000 holds through
HTTP and the real `reserve` step would take minutes at the end-to-end rate and could not spread
their expiries over a window shorter than their creation; the bulk path takes seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.expire import HOP_MS
from bench.population import create_items_sql
from bench.stats import percentile, rounded
from config import load_settings
from messaging.outbox import OutboxPublisher
from messaging.queues import EXPIRE
from messaging.rabbitmq import fleet_broker
from models.clock import utcnow
from models.db import create_sessionmaker
from models.tables import Order, OrderHistory, OrderLine, OutboxMessage, Payment, ReservedStock

CHUNK = 250
PUBLISHERS = 12
PRICE_CENTS = 1500


def _chunk_rows(
    order_ids: list[str], expiries, skus: list[str], accounts: list[str], now
) -> dict[str, list[dict]]:
    """The rows of one order per id: expiring at ``expiries[i]``, holding one unit of ``skus[i]``."""
    rows: dict[str, list[dict]] = {
        "orders": [],
        "lines": [],
        "history": [],
        "payments": [],
        "holds": [],
        "outbox": [],
    }
    for order_id, expires_at, sku in zip(order_ids, expiries, skus, strict=True):
        account_id = random.choice(accounts)
        rows["orders"].append(
            {
                "id": order_id,
                "account_id": account_id,
                "status": "AWAITING_PAYMENT",
                "reason": None,
                "total_cents": PRICE_CENTS,
                "currency": "USD",
                "hold_expires_at": expires_at,
                "shipping_address": None,
                "source": "api",
                "created_at": now,
                "updated_at": now,
            }
        )
        rows["lines"].append(
            {"order_id": order_id, "sku": sku, "quantity": 1, "unit_price_cents": PRICE_CENTS}
        )
        rows["history"] += [
            {"order_id": order_id, "status": "PENDING", "reason": None, "note": None, "at": now},
            {"order_id": order_id, "status": "AWAITING_PAYMENT", "reason": None, "note": None, "at": now},
        ]
        payment_id = uuid.uuid4().hex
        rows["payments"].append(
            {
                "id": payment_id,
                "order_id": order_id,
                "attempt": 1,
                "method": "redirect",
                "token": None,
                "amount_cents": PRICE_CENTS,
                "currency": "USD",
                "status": "PENDING",
                "provider_payment_id": f"pay_bench_{payment_id[:20]}",
                "checkout_url": f"http://127.0.0.1/checkout/pay_bench_{payment_id[:20]}",
                "provider_refund_id": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        rows["holds"].append(
            {
                "order_id": order_id,
                "sku": sku,
                "quantity": 1,
                "expires_at": expires_at,
                "state": "HELD",
                "created_at": now,
                "released_at": None,
            }
        )
        delay_ms = max(int((expires_at - now).total_seconds() * 1000), 0)
        rows["outbox"].append(
            {
                "id": uuid.uuid4().hex,
                "queue_name": EXPIRE.queue_name,
                "actor_name": EXPIRE.actor_name,
                "exchange": None,
                "routing_key": None,
                "kwargs": {"order_id": order_id},
                "delay_ms": min(delay_ms, HOP_MS) or None,
                "order_id": order_id,
                "created_at": now,
                "sent_at": None,
                "attempts": 0,
            }
        )
    return rows


async def _write_chunk(engine: AsyncEngine, rows: dict[str, list[dict]]) -> None:
    async with engine.begin() as connection:
        await connection.execute(Order.__table__.insert(), rows["orders"])
        await connection.execute(OrderLine.__table__.insert(), rows["lines"])
        await connection.execute(OrderHistory.__table__.insert(), rows["history"])
        await connection.execute(Payment.__table__.insert(), rows["payments"])
        await connection.execute(ReservedStock.__table__.insert(), rows["holds"])
        await connection.execute(OutboxMessage.__table__.insert(), rows["outbox"])


async def create_holds(
    *,
    engine: AsyncEngine,
    broker_url: str,
    accounts: list[str],
    holds: int,
    lead_s: float,
    window_s: float,
    log,
    queue_type: str = "classic",
) -> dict[str, object]:
    """Write ``holds`` holds expiring between now+lead and now+lead+window, and publish their `expire`
    (to queues of the fleet's ``queue_type``, declared as its workers declare them)."""
    sku_count = max(50, min(500, holds // 100))
    run = uuid.uuid4().hex[:6].upper()
    skus = [f"EXP-{run}-{i}" for i in range(sku_count)]
    sku_of = [skus[i % sku_count] for i in range(holds)]
    random.shuffle(sku_of)
    # Each SKU was booked in with its held units plus 1000 on the shelf: received = available + held.
    held = Counter(sku_of)
    await create_items_sql(engine, received={sku: 1000 + held[sku] for sku in skus}, available=1000)
    start = utcnow() + timedelta(seconds=lead_s)
    offsets = sorted(random.uniform(0, window_s) for _ in range(holds))
    expiries = [start + timedelta(seconds=offset) for offset in offsets]
    sessionmaker = create_sessionmaker(engine)
    settings = load_settings({"BROKER_URL": broker_url, "QUEUE_TYPE": queue_type})
    publishers = [
        OutboxPublisher(fleet_broker(settings, middleware=[]), sessionmaker) for _ in range(PUBLISHERS)
    ]
    free = asyncio.Queue()
    for publisher in publishers:
        free.put_nowait(publisher)
    began = time.monotonic()
    write_s = publish_s = 0.0

    async def chunk(first: int) -> None:
        nonlocal write_s, publish_s
        ids = [uuid.uuid4().hex for _ in range(min(CHUNK, holds - first))]
        now = utcnow()
        rows = _chunk_rows(
            ids, expiries[first : first + len(ids)], sku_of[first : first + len(ids)], accounts, now
        )
        t0 = time.monotonic()
        await _write_chunk(engine, rows)
        write_s += time.monotonic() - t0
        messages = [OutboxMessage(**row) for row in rows["outbox"]]
        publisher = await free.get()
        try:
            t0 = time.monotonic()
            await publisher.publish(messages)
            publish_s += time.monotonic() - t0
        finally:
            free.put_nowait(publisher)

    try:
        # Chunks in expiry order, a few at a time, like many `reserve` steps committing and publishing.
        pending: set[asyncio.Task] = set()
        for first in range(0, holds, CHUNK):
            if len(pending) >= PUBLISHERS:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            pending.add(asyncio.create_task(chunk(first)))
        for task in asyncio.as_completed(pending):
            await task
    finally:
        # A publisher that marks confirmed rows sent in batches (``flush``) marks the last ones now:
        # rows left unmarked would be sent again by the fleet's outbox relay, as duplicates.
        for publisher in publishers:
            flush = getattr(publisher, "flush", None)
            if flush is not None:
                await flush()
        await asyncio.get_running_loop().run_in_executor(None, lambda: [p.close() for p in publishers])
    async with engine.connect() as connection:
        unsent = (
            await connection.execute(
                text("SELECT COUNT(*) FROM outbox WHERE actor_name = 'expire' AND sent_at IS NULL")
            )
        ).scalar_one()
    created_s = time.monotonic() - began
    first_due_in = (start - utcnow()).total_seconds()
    log(
        f"expiry: {holds} holds written and their `expire` published in {created_s:.1f}s "
        f"(db {write_s:.1f}s, publish {publish_s:.1f}s across {PUBLISHERS} publishers); "
        f"first due in {first_due_in:.1f}s; {unsent} outbox rows unsent"
    )
    return {
        "start": start,
        "end": expiries[-1],
        "expiries": expiries,
        "skus": skus,
        "created_s": round(created_s, 1),
        "first_due_in_s": round(first_due_in, 1),
        "unsent_after_create": unsent,
    }


#: Past ``end`` + grace, the releases are waited for while they still come (a hold that is late is
#: late, not lost), for at most this many times the grace more.
LATE_WAIT_GRACES = 4


async def measure(
    *, engine: AsyncEngine, holds: int, skus: list[str], end, grace_s: float, log, others_done=lambda: True
) -> dict[str, object]:
    """Wait for the releases (until ``end`` + grace, or all released and ``others_done()``), then
    the lateness of each hold.

    Holds still held at ``end`` + grace are waited for as long as releases keep coming (at least
    one in the last ``grace_s``), up to ``LATE_WAIT_GRACES`` graces more, so that a fleet running
    behind (the expiry runs under an order load) shows as late rather than as holds never released;
    ``released_within_grace`` counts those released by ``end`` + grace."""
    deadline = end + timedelta(seconds=grace_s)
    last_chance = deadline + timedelta(seconds=grace_s * LATE_WAIT_GRACES)
    count = text("SELECT COUNT(*) FROM reserved_stock WHERE sku IN :skus AND state = 'RELEASED'").bindparams(
        bindparam("skus", expanding=True)
    )
    released = 0
    within_grace = None
    progressed_at, progressed_count = utcnow(), -1
    while True:
        async with engine.connect() as connection:
            released = (await connection.execute(count, {"skus": skus})).scalar_one()
        now = utcnow()
        if released != progressed_count:
            progressed_at, progressed_count = now, released
        if within_grace is None and (released >= holds or now > deadline):
            within_grace = released
        if released >= holds and others_done():
            break
        if now > deadline and (
            released >= holds or now > last_chance or (now - progressed_at).total_seconds() > grace_s
        ):
            break
        await asyncio.sleep(0.5)
    if released > within_grace:
        log(
            f"expiry: {within_grace:,} holds released within the {grace_s:g}s grace, "
            f"{released - within_grace:,} more after it"
        )
    async with engine.connect() as connection:
        lateness = [
            row[0] / 1e6
            for row in (
                await connection.execute(
                    text(
                        "SELECT TIMESTAMPDIFF(MICROSECOND, expires_at, released_at) FROM reserved_stock "
                        "WHERE sku IN :skus AND released_at IS NOT NULL"
                    ).bindparams(bindparam("skus", expanding=True)),
                    {"skus": skus},
                )
            ).all()
        ]
        cancelled = (
            await connection.execute(
                text(
                    "SELECT COUNT(*) FROM orders o JOIN reserved_stock r ON r.order_id = o.id "
                    "WHERE r.sku IN :skus AND o.status = 'CANCELLED' AND o.reason = 'payment_timeout'"
                ).bindparams(bindparam("skus", expanding=True)),
                {"skus": skus},
            )
        ).scalar_one()
    late_ms = [x * 1000 for x in lateness]
    early = sum(1 for x in late_ms if x < 0)
    log(
        f"expiry: {released:,} of {holds:,} holds released; "
        f"lateness p50 {rounded(percentile(late_ms, 0.5))} ms, "
        f"p99 {rounded(percentile(late_ms, 0.99))} ms, max {rounded(max(late_ms)) if late_ms else None} ms"
    )
    return {
        "holds": holds,
        "delivered": released,
        "released_within_grace": within_grace,
        "cancelled_payment_timeout": cancelled,
        "released_early": early,
        "p50_ms": rounded(percentile(late_ms, 0.50)),
        "p99_ms": rounded(percentile(late_ms, 0.99)),
        "max_ms": rounded(max(late_ms)) if late_ms else None,
    }
