"""What must hold after the faults: nothing lost, everything final, stock and money exact, one email each."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from sqlalchemy import select

from bench.faults.emails import (
    Arrival,
    expected_emails,
    judge_emails,
    load_ledger,
    wait_for_notify,
)
from bench.faults.traffic import Accepted
from models.archive import rebuild_archived
from models.invariants import invariant_violations
from models.state import OrderStatus, PaymentStatus
from models.tables import Order, orders_archive

UNSETTLED = (OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT)


@dataclass
class Verdict:
    figures: dict[str, object] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


async def all_order_ids(sessionmaker) -> list[str]:
    """Every order of the run, hot or archived, also those whose client gave up before the answer."""
    async with sessionmaker() as session:
        hot = (await session.scalars(select(Order.id))).all()
        archived = (await session.scalars(select(orders_archive.c.id))).all()
    return [*hot, *archived]


async def load_orders(sessionmaker, ids: list[str]) -> dict[str, Order]:
    """The accepted orders as the database has them now (hot or archived)."""
    found: dict[str, Order] = {}
    async with sessionmaker() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for order in (await session.scalars(select(Order).where(Order.id.in_(chunk)))).all():
                found[order.id] = order
            rows = [
                dict(r)
                for r in (await session.execute(select(orders_archive).where(orders_archive.c.id.in_(chunk))))
                .mappings()
                .all()
            ]
            for order in await rebuild_archived(session, rows):
                found[order.id] = order
    return found


def _unsettled(order: Order) -> bool:
    payment = order.payment
    return order.status in UNSETTLED or (
        payment is not None and payment.status == PaymentStatus.REFUND_PENDING
    )


async def wait_until_settled(
    sessionmaker, accepted: list[Accepted], timeout: float
) -> tuple[dict[str, Order], float]:
    """Poll until every accepted order is settled or ``timeout`` passes; returns the orders and the wait."""
    ids = [order.order_id for order in accepted]
    started = time.monotonic()
    while True:
        orders = await load_orders(sessionmaker, ids)
        if len(orders) == len(ids) and not any(_unsettled(o) for o in orders.values()):
            return orders, time.monotonic() - started
        if time.monotonic() - started > timeout:
            return orders, time.monotonic() - started
        await asyncio.sleep(1)


@dataclass(frozen=True)
class ProviderMoney:
    """What the payment provider did for one order, over all of its payment attempts."""

    charges: int  # payments that succeeded
    refunds: int
    kept: int  # succeeded payments not refunded in full: the charges the customer keeps paying


async def provider_records(psp_url: str, order_ids: list[str]) -> dict[str, ProviderMoney]:
    """Per order: its charges, refunds and kept charges as the payment provider counts them."""
    records: dict[str, ProviderMoney] = {}
    async with aiohttp.ClientSession() as client:

        async def one(order_id: str) -> None:
            async with client.get(f"{psp_url}/v1/payments", params={"order_id": order_id}) as response:
                payments = (await response.json())["data"]
            charged = [p for p in payments if p["status"] == "succeeded"]
            refunds = kept = 0
            for payment in charged:
                async with client.get(
                    f"{psp_url}/v1/refunds", params={"payment_id": payment["id"]}
                ) as response:
                    found = (await response.json())["data"]
                refunds += len(found)
                kept += sum(r["amount_cents"] for r in found) < payment["amount_cents"]
            records[order_id] = ProviderMoney(len(charged), refunds, kept)

        for start in range(0, len(order_ids), 50):
            await asyncio.gather(*(one(order_id) for order_id in order_ids[start : start + 50]))
    return records


async def judge(
    sessionmaker,
    psp_url: str,
    accepted: list[Accepted],
    mail_sink,
    settle_timeout: float,
    load_ended_at: float,
) -> Verdict:
    """Check every invariant of the chaos run; figures for the table, violations for the exit code.

    ``mail_sink`` is the fleet's mail sink (``received()``, e.g. :class:`MailDirSink`): it is read only
    once the notify ledger has caught up, ``load_ended_at`` (wall clock) splits the lateness.
    """
    verdict = Verdict()
    orders, waited = await wait_until_settled(sessionmaker, accepted, settle_timeout)
    verdict.figures["settled after faults (s)"] = round(waited, 1)
    lost = [a.order_id for a in accepted if a.order_id not in orders]
    unsettled = [o.id for o in orders.values() if _unsettled(o)]
    if lost:
        verdict.violations.append(f"{len(lost)} accepted orders lost, e.g. {lost[:3]}")
    if unsettled:
        verdict.violations.append(
            f"{len(unsettled)} orders not final {settle_timeout:.0f}s after the faults, e.g. {unsettled[:3]}"
        )
    outcomes = Counter((o.status, o.reason) for o in orders.values())
    verdict.figures["outcomes"] = ", ".join(
        f"{s}{'/' + r if r else ''} {n}" for (s, r), n in sorted(outcomes.items(), key=lambda item: -item[1])
    )

    async with sessionmaker() as session:
        for line in await invariant_violations(session):
            verdict.violations.append(line)

    records = await provider_records(psp_url, list(orders))
    # An order may have had several payment attempts: what counts is the charges it keeps.
    for order_id, money in records.items():
        order = orders[order_id]
        if money.kept > 1:
            verdict.violations.append(
                f"order {order_id}: {money.kept} charges kept at the provider "
                f"({money.charges} charges, {money.refunds} refunds)"
            )
        if money.kept and order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
            verdict.violations.append(f"order {order_id}: {order.status} but its charge was not refunded")
        if money.charges and order.status == OrderStatus.PLACED and not money.kept:
            verdict.violations.append(f"order {order_id}: PLACED but refunded")
    verdict.figures["charges at the provider"] = sum(m.charges for m in records.values())
    verdict.figures["refunds at the provider"] = sum(m.refunds for m in records.values())

    await _judge_emails(verdict, sessionmaker, mail_sink, settle_timeout, load_ended_at)
    return verdict


async def _judge_emails(
    verdict: Verdict, sessionmaker, mail_sink, timeout: float, load_ended_at: float
) -> None:
    left, waited = await wait_for_notify(sessionmaker, timeout)
    verdict.figures["emails all handled, after the orders settled (s)"] = (
        round(waited, 1) if not left else f"not within {timeout:.0f}"
    )
    if left:
        verdict.violations.append(
            f"notify had not caught up {timeout:.0f}s after the orders settled: "
            + ", ".join(f"{what} {n}" for what, n in left.items())
        )
    everything = await load_orders(sessionmaker, await all_order_ids(sessionmaker))
    findings = judge_emails(
        expected_emails(everything.values()),
        [Arrival.of(at, message) for at, message in mail_sink.received()],
        await load_ledger(sessionmaker),
        load_ended_at,
        orders=len(everything),
    )
    verdict.figures.update(findings.figures)
    verdict.violations.extend(findings.violations)
