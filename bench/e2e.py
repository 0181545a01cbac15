"""2. End to end: closed-loop clients, each placing an order and waiting for it before the next.

``clients`` coroutines each send POST /orders (one unit of one of many well-stocked SKUs, paid
with the provider's always-succeeding test card, from a customer chosen round-robin from a large
pool, so nobody nears the unpaid-orders limit), wait until the order is PLACED, then send the next;
a warm-up, then the measured window. A client learns that its order is done the way the
gateway's event stream does: from the fleet's Redis status nudges (``orders:<id>:status``), with
a database check every half second in case a nudge is lost. So at most ``clients`` orders are in
flight, the fleet runs at the rate it can sustain, and the latencies are the ones a customer sees
at that rate (a loop on POST alone would pile up an ever-growing backlog instead).

Afterwards the bench reads the database:
- placed orders/s: PLACED transitions (order_history) inside the window / window length;
- POST latency: measured by the client, for requests sent inside the window;
- POST-to-PLACED: the PLACED history time minus the client's send time (one machine, one clock);
- messages per order: outbox rows per order, worker messages and domain events apart;
- confirmation email lateness: for the orders sent inside the window, the arrival of their
  ``order.placed`` email at the fleet's mail sink (its ``X-Received-At``, from the .eml files in
  ``MAIL_DIR``) minus the PLACED history time. The bench waits for those emails (up to the drain
  timeout) so that emails held back behind the load count with their full delay; one that never
  came is counted as missing, and a p99 that falls on a missing one is unknown (None).

A ``window`` (:class:`Window`) is told when the measured window begins and ends, so CPU time and
the database's statement counters are read over exactly that window (``bench/__main__.py``).

:func:`open_loop` then sends orders at a fixed arrival rate (half the closed-loop rate) on a
schedule, each on its own, whether or not earlier ones were answered, for a window: the
latencies a customer sees when the fleet is not saturated. Latencies run from each order's
scheduled send time, so a late sender cannot hide a slow fleet (the slip itself is reported).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Protocol

import aiohttp
import redis.asyncio as aioredis
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.stats import percentile, rounded

FINAL = ("PLACED", "REJECTED", "CANCELLED")
_STATUSES = text("SELECT id, status FROM orders WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_PLACED_AT = text(
    "SELECT order_id, MIN(at) FROM order_history WHERE status = 'PLACED' AND order_id IN :ids "
    "GROUP BY order_id"
).bindparams(bindparam("ids", expanding=True))


class Window(Protocol):
    """Told when the measured window of the closed loop begins and when it ends."""

    async def begin(self) -> None: ...

    async def end(self) -> None: ...


@dataclass
class Sent:
    order_id: str | None
    status: int
    sent_at: float  # wall clock (time.time())
    latency: float  # seconds
    measured: bool  # sent inside the window


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


async def statuses_of(engine: AsyncEngine, order_ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    async with engine.connect() as connection:
        for start in range(0, len(order_ids), 5000):
            rows = await connection.execute(_STATUSES, {"ids": order_ids[start : start + 5000]})
            found.update(dict(rows.all()))
    return found


async def wait_final(
    engine: AsyncEngine, order_ids: list[str], timeout: float, final: tuple[str, ...] = FINAL
) -> tuple[dict[str, str], float]:
    """Poll until every order is in a ``final`` status (or the timeout); statuses and seconds waited."""
    started = time.monotonic()
    while True:
        statuses = await statuses_of(engine, order_ids)
        if (
            all(statuses.get(order_id) in final for order_id in order_ids)
            or time.monotonic() - started > timeout
        ):
            return statuses, time.monotonic() - started
        await asyncio.sleep(0.2)


CONFIRMATION = "order.placed"


@dataclass
class MailDir:
    """The mail sink's store (sandbox/mail.py: one .eml per message, named by arrival), read as it fills."""

    directory: Path
    arrivals: dict[str, float] = field(default_factory=dict)  # order id -> first confirmation arrival
    _seen: set[str] = field(default_factory=set)

    def scan(self) -> None:
        """Read the headers of the messages that arrived since the last scan."""
        try:
            entries = [
                e for e in os.scandir(self.directory) if e.name.endswith(".eml") and e.name not in self._seen
            ]
        except FileNotFoundError:  # nothing received yet
            return
        for entry in entries:
            self._seen.add(entry.name)
            with open(entry.path, "rb") as file:
                headers = BytesParser(policy=policy.default).parse(file, headersonly=True)
            if headers["X-Order-Event"] != CONFIRMATION or not headers["X-Order-Id"]:
                continue
            arrived = _received_at(headers["X-Received-At"], entry.name)
            order_id = str(headers["X-Order-Id"])
            self.arrivals[order_id] = min(arrived, self.arrivals.get(order_id, arrived))

    async def wait_for(self, order_ids: set[str], timeout: float) -> float:
        """Scan until every order in ``order_ids`` has its confirmation (or ``timeout``); seconds waited."""
        started = time.monotonic()
        while True:
            await asyncio.to_thread(self.scan)
            if order_ids <= self.arrivals.keys() or time.monotonic() - started > timeout:
                return time.monotonic() - started
            await asyncio.sleep(0.2)


def _received_at(header, file_name: str) -> float:
    """The sink's arrival time: its X-Received-At header, else the nanoseconds its file is named by."""
    try:
        return datetime.fromisoformat(str(header).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return int(file_name.split("-", 1)[0]) / 1e9


class Completion:
    """Futures that resolve when an order reaches a final status (Redis nudge, or a database check)."""

    def __init__(self, redis_url: str, engine: AsyncEngine):
        self.redis = aioredis.from_url(redis_url)
        self.engine = engine
        self.waiting: dict[str, tuple[asyncio.Future, float]] = {}
        self.done: dict[str, str] = {}

    def wait(self, order_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if order_id in self.done:
            future.set_result(self.done.pop(order_id))
        else:
            self.waiting[order_id] = (future, time.monotonic())
        return future

    def _resolve(self, order_id: str, status: str) -> None:
        entry = self.waiting.pop(order_id, None)
        if entry is None:
            self.done[order_id] = status
        elif not entry[0].done():
            entry[0].set_result(status)

    async def _nudges(self, pubsub) -> None:
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            status = message["data"].decode()
            if status in FINAL:
                self._resolve(message["channel"].decode().split(":")[1], status)

    async def _recheck(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            stale = [
                order_id
                for order_id, (_, since) in list(self.waiting.items())
                if time.monotonic() - since > 0.5
            ]
            if stale:
                for order_id, status in (await statuses_of(self.engine, stale)).items():
                    if status in FINAL:
                        self._resolve(order_id, status)

    async def __aenter__(self) -> Completion:
        self.pubsub = self.redis.pubsub()
        await self.pubsub.psubscribe("orders:*:status")  # messaging.live_status.channel()
        self.tasks = [asyncio.create_task(self._nudges(self.pubsub)), asyncio.create_task(self._recheck())]
        return self

    async def __aexit__(self, *exc) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pubsub.aclose()
        await self.redis.aclose()


async def run(
    *,
    engine: AsyncEngine,
    redis_url: str,
    gateway_url: str,
    tokens: list[str],
    skus: list[str],
    clients: int,
    warmup_s: float,
    window_s: float,
    drain_timeout_s: float,
    log,
    mail_dir: str | os.PathLike[str] | None = None,
    window: Window | None = None,
) -> dict[str, object]:
    sent: list[Sent] = []
    started = time.monotonic()
    window_start = started + warmup_s
    window_end = window_start + window_s
    wall_offset = time.time() - time.monotonic()

    async def client(session: aiohttp.ClientSession, completion: Completion, index: int) -> None:
        turn = index
        while (now := time.monotonic()) < window_end:
            token = tokens[turn % len(tokens)]
            sku = skus[turn % len(skus)]
            turn += clients
            body = {
                "items": [{"sku": sku, "quantity": 1}],
                "payment": {"method": "token", "token": "pm_card_ok"},
            }
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
            sent_wall = time.time()
            t0 = time.perf_counter()
            try:
                async with session.post(f"{gateway_url}/orders", json=body, headers=headers) as response:
                    payload = await response.json(content_type=None)
                    status = response.status
            except (TimeoutError, aiohttp.ClientError, ValueError) as error:
                log(f"e2e: request failed: {error!r}")
                payload, status = None, 0
            latency = time.perf_counter() - t0
            order_id = payload.get("id") if status == 202 and isinstance(payload, dict) else None
            sent.append(Sent(order_id, status, sent_wall, latency, window_start <= now < window_end))
            if order_id is None:
                await asyncio.sleep(0.1)
                continue
            try:
                await asyncio.wait_for(completion.wait(order_id), timeout=drain_timeout_s)
            except TimeoutError:
                log(f"e2e: order {order_id} not final after {drain_timeout_s:g}s")
                return

    async def watch_window() -> None:
        if window is None:
            return
        await asyncio.sleep(max(window_start - time.monotonic(), 0))
        await window.begin()
        await asyncio.sleep(max(window_end - time.monotonic(), 0))
        await window.end()

    connector = aiohttp.TCPConnector(limit=0)
    async with (
        Completion(redis_url, engine) as completion,
        aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session,
    ):
        await asyncio.gather(watch_window(), *(client(session, completion, i) for i in range(clients)))
    posted = [s for s in sent if s.order_id]
    errors = [s for s in sent if not s.order_id]
    order_ids = [s.order_id for s in posted]
    statuses, drained_s = await wait_final(engine, order_ids, drain_timeout_s)
    not_placed = [order_id for order_id in order_ids if statuses.get(order_id) != "PLACED"]
    log(
        f"e2e: {len(sent)} orders ({len(errors)} not accepted, {len(not_placed)} not placed) "
        f"in {time.monotonic() - started:.1f}s"
    )

    ws, we = _utc(window_start + wall_offset), _utc(window_end + wall_offset)
    async with engine.connect() as connection:
        placed_in_window = (
            await connection.execute(
                text("SELECT COUNT(*) FROM order_history WHERE status = 'PLACED' AND at >= :ws AND at < :we"),
                {"ws": ws, "we": we},
            )
        ).scalar_one()
        placed_at = dict(
            (
                await connection.execute(
                    text(
                        "SELECT order_id, MIN(at) FROM order_history WHERE status = 'PLACED' GROUP BY "
                        "order_id"
                    )
                )
            ).all()
        )
        per_kind = (
            await connection.execute(
                text(
                    "SELECT COALESCE(actor_name, CONCAT('event:', routing_key)), COUNT(*) FROM outbox "
                    "WHERE order_id IS NOT NULL GROUP BY 1"
                )
            )
        ).all()
        orders_total = (await connection.execute(text("SELECT COUNT(*) FROM orders"))).scalar_one()

    post_latencies = [s.latency * 1000 for s in sent if s.measured]
    to_placed = []
    for s in posted:
        at = placed_at.get(s.order_id)
        if s.measured and at is not None:
            to_placed.append((at.replace(tzinfo=UTC).timestamp() - s.sent_at) * 1000)
    emails = (
        await confirmation_lateness(mail_dir, posted, placed_at, drain_timeout_s, log) if mail_dir else {}
    )
    kinds = {kind: count / orders_total for kind, count in per_kind} if orders_total else {}
    worker_messages = sum(v for k, v in kinds.items() if not k.startswith("event:"))
    events = sum(v for k, v in kinds.items() if k.startswith("event:"))
    return {
        "clients": clients,
        "window_s": window_s,
        "warmup_s": warmup_s,
        "posts": len(sent),
        "posts_in_window": len(post_latencies),
        "not_accepted": len(errors),
        "not_accepted_statuses": sorted({s.status for s in errors}),
        "accepted": len(posted),
        "not_placed_after_drain": len(not_placed),
        "drain_s": rounded(drained_s),
        "placed_in_window": placed_in_window,
        "orders_per_s": rounded(placed_in_window / window_s),
        "post_p50_ms": rounded(percentile(post_latencies, 0.50)),
        "post_p99_ms": rounded(percentile(post_latencies, 0.99)),
        "placed_p50_ms": rounded(percentile(to_placed, 0.50)),
        "placed_p99_ms": rounded(percentile(to_placed, 0.99)),
        "messages_per_order": {k: round(v, 2) for k, v in sorted(kinds.items())},
        "worker_messages_per_order": round(worker_messages, 2),
        "events_per_order": round(events, 2),
        **emails,
    }


async def confirmation_lateness(
    mail_dir, posted: list[Sent], placed_at: dict[str, datetime], timeout: float, log
) -> dict[str, object]:
    """Seconds from PLACED to the confirmation email at the sink, for the orders sent inside the window."""
    placed = {s.order_id: placed_at[s.order_id] for s in posted if s.measured and s.order_id in placed_at}
    mailbox = MailDir(Path(mail_dir))
    waited = await mailbox.wait_for(set(placed), timeout)
    # An email that never came is later than any that did: it sorts last, so it can only make p99 unknown.
    lateness = [
        mailbox.arrivals[order_id] - at.replace(tzinfo=UTC).timestamp()
        if order_id in mailbox.arrivals
        else math.inf
        for order_id, at in placed.items()
    ]
    missing = sum(1 for value in lateness if value == math.inf)
    log(
        f"e2e: {len(placed) - missing} of {len(placed)} confirmation emails, all in {waited:.1f}s after "
        "the drain"
    )

    def seconds(value: float | None) -> float | None:
        return None if value is None or value == math.inf else round(value, 3)

    return {
        "confirmation_emails_expected": len(placed),
        "confirmation_emails_missing": missing,
        "confirmation_email_wait_s": rounded(waited),
        "confirmation_email_p50_s": seconds(percentile(lateness, 0.50)),
        "confirmation_email_p99_s": seconds(percentile(lateness, 0.99)),
        "confirmation_email_max_s": seconds(max(lateness)) if lateness else None,
    }


async def placed_times(engine: AsyncEngine, order_ids: list[str]) -> dict[str, float]:
    """Each order's PLACED time (its history) as a Unix timestamp."""
    found: dict[str, float] = {}
    async with engine.connect() as connection:
        for start in range(0, len(order_ids), 5000):
            rows = await connection.execute(_PLACED_AT, {"ids": order_ids[start : start + 5000]})
            found.update({order_id: at.replace(tzinfo=UTC).timestamp() for order_id, at in rows.all()})
    return found


@dataclass
class Scheduled:
    order_id: str | None
    status: int
    due_wall: float  # when it was to be sent (time.time() clock)
    slip: float  # seconds it was sent after that
    latency: float  # seconds from the scheduled send to the answer


async def open_loop(
    *,
    engine: AsyncEngine,
    gateway_url: str,
    tokens: list[str],
    skus: list[str],
    rate: float,
    window_s: float,
    drain_timeout_s: float,
    log,
    first_turn: int = 0,
) -> dict[str, object]:
    """POST /orders at ``rate`` per second for ``window_s`` seconds on a fixed schedule (never
    waiting for an answer before the next send); POST and POST-to-PLACED latencies at that rate."""
    count = max(1, round(rate * window_s))
    interval = 1 / rate
    done: list[Scheduled] = []
    wall_offset = time.time() - time.monotonic()

    async def send(session: aiohttp.ClientSession, turn: int, due: float) -> None:
        body = {
            "items": [{"sku": skus[turn % len(skus)], "quantity": 1}],
            "payment": {"method": "token", "token": "pm_card_ok"},
        }
        headers = {
            "Authorization": f"Bearer {tokens[turn % len(tokens)]}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        slip = time.monotonic() - due
        try:
            async with session.post(f"{gateway_url}/orders", json=body, headers=headers) as response:
                payload = await response.json(content_type=None)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            log(f"open loop: request failed: {error!r}")
            payload, status = None, 0
        latency = time.monotonic() - due
        order_id = payload.get("id") if status == 202 and isinstance(payload, dict) else None
        done.append(Scheduled(order_id, status, due + wall_offset, slip, latency))

    connector = aiohttp.TCPConnector(limit=0)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        first_due = time.monotonic() + 0.05
        tasks = []
        for index in range(count):
            due = first_due + index * interval
            await asyncio.sleep(max(due - time.monotonic(), 0))
            tasks.append(asyncio.create_task(send(session, first_turn + index, due)))
        await asyncio.gather(*tasks)
    accepted = [s for s in done if s.order_id]
    order_ids = [s.order_id for s in accepted]
    statuses, drained_s = await wait_final(engine, order_ids, drain_timeout_s)
    not_placed = sum(1 for order_id in order_ids if statuses.get(order_id) != "PLACED")
    placed_at = await placed_times(engine, order_ids)
    to_placed = [(placed_at[s.order_id] - s.due_wall) * 1000 for s in accepted if s.order_id in placed_at]
    posts = [s.latency * 1000 for s in done]
    slips = [s.slip * 1000 for s in done]
    log(
        f"open loop: {len(done)} orders at {rate:g}/s ({len(done) - len(accepted)} not accepted, "
        f"{not_placed} not placed) in {time.monotonic() - started:.1f}s"
    )
    return {
        "rate_per_s": round(rate, 2),
        "window_s": window_s,
        "posts": len(done),
        "not_accepted": len(done) - len(accepted),
        "not_accepted_statuses": sorted({s.status for s in done if not s.order_id}),
        "not_placed_after_drain": not_placed,
        "drain_s": rounded(drained_s),
        "post_p50_ms": rounded(percentile(posts, 0.50)),
        "post_p99_ms": rounded(percentile(posts, 0.99)),
        "placed_p50_ms": rounded(percentile(to_placed, 0.50)),
        "placed_p99_ms": rounded(percentile(to_placed, 0.99)),
        "send_slip_p99_ms": rounded(percentile(slips, 0.99)),
        "send_slip_max_ms": rounded(max(slips)) if slips else None,
    }
