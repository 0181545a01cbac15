"""3. Flash sale: many buyers at the same instant for a few units of one SKU.

Every buyer (a different customer) sends one POST /orders for one unit at once. The sale is
exact when exactly ``units`` orders are PLACED, the rest REJECTED out_of_stock, and the SKU ends
with nothing available; ``final_s`` is from the first request sent to the last order's final
status (its history time in the database).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC

import aiohttp
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.e2e import wait_final
from bench.stats import percentile, rounded

_LAST_FINAL = text(
    "SELECT MAX(at) FROM order_history WHERE order_id IN :ids AND status IN ('PLACED', 'REJECTED')"
).bindparams(bindparam("ids", expanding=True))


async def run(
    *, engine: AsyncEngine, gateway_url: str, tokens: list[str], sku: str, units: int, log
) -> dict[str, object]:
    buyers = len(tokens)
    gate = asyncio.Event()
    latencies: list[float] = []

    async def buy(session: aiohttp.ClientSession, token: str) -> tuple[int, str | None]:
        await gate.wait()
        body = {"items": [{"sku": sku, "quantity": 1}], "payment": {"method": "token", "token": "pm_card_ok"}}
        t0 = time.perf_counter()
        async with session.post(
            f"{gateway_url}/orders",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        ) as response:
            payload = await response.json(content_type=None)
            latencies.append(time.perf_counter() - t0)
            return response.status, payload.get("id") if response.status == 202 else None

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [asyncio.create_task(buy(session, token)) for token in tokens]
        await asyncio.sleep(0.2)  # every buyer is waiting at the gate
        started_wall = time.time()
        gate.set()
        answers = await asyncio.gather(*tasks, return_exceptions=True)
    order_ids = [a[1] for a in answers if isinstance(a, tuple) and a[1]]
    refused = [a for a in answers if not (isinstance(a, tuple) and a[1])]
    log(
        f"flash: {len(order_ids)} of {buyers} orders accepted in "
        f"{time.time() - started_wall:.1f}s; waiting for each to be final"
    )
    statuses, _ = await wait_final(engine, order_ids, timeout=120, final=("PLACED", "REJECTED", "CANCELLED"))
    placed = sum(1 for s in statuses.values() if s == "PLACED")
    rejected = sum(1 for s in statuses.values() if s == "REJECTED")
    async with engine.connect() as connection:
        last = (await connection.execute(_LAST_FINAL, {"ids": order_ids})).scalar_one() if order_ids else None
        available = (
            await connection.execute(text("SELECT available FROM stock WHERE sku = :sku"), {"sku": sku})
        ).scalar_one()
    final_s = (last.replace(tzinfo=UTC).timestamp() - started_wall) if last else None
    exact = placed == units and rejected == buyers - units and available == 0 and not refused
    return {
        "buyers": buyers,
        "units": units,
        "placed": placed,
        "rejected": rejected,
        "other": len(order_ids) - placed - rejected,
        "not_accepted": len(refused),
        "available_after": available,
        "exact": exact,
        "final_s": rounded(final_s, 2),
        "post_p50_ms": rounded(percentile([x * 1000 for x in latencies], 0.5)),
        "post_p99_ms": rounded(percentile([x * 1000 for x in latencies], 0.99)),
    }
