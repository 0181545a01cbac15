"""What must hold after the faults: nothing lost, everything final, stock and money exact, one email each."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from sqlalchemy import func, select

from bench.faults.after_sale import REFUND_REASON
from bench.faults.emails import (
    Arrival,
    expected_emails,
    judge_emails,
    load_ledger,
    wait_for_notify,
)
from bench.faults.money import judge_money, provider_books
from bench.faults.records import OrderRecords, all_order_ids, load_records
from bench.faults.traffic import Accepted
from models.invariants import invariant_violations
from models.state import CAPTURED, PaymentStatus, RefundStatus, ReturnStatus
from models.tables import WebhookEvent

EXAMPLES = 3


@dataclass
class Verdict:
    figures: dict[str, object] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Webhooks:
    """How far the provider's webhooks got: not yet acknowledged by the gateway, not yet applied."""

    undelivered: int
    unapplied: int

    @property
    def quiet(self) -> bool:
        return not self.undelivered and not self.unapplied


async def webhooks_in_flight(sessionmaker, psp_url: str) -> Webhooks:
    """Provider events the gateway has not acknowledged, and acknowledged ones `settle` has not applied.

    Until both are none, the provider may know of money (a replaced attempt that succeeded, a
    refund) our records do not show yet, and comparing the two would report a disagreement that
    is only a delay.
    """
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{psp_url}/v1/events") as response:
            response.raise_for_status()
            events = (await response.json())["data"]
    async with sessionmaker() as session:
        unapplied = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.processed_at.is_(None))
        )
    return Webhooks(sum(1 for event in events if not event["delivery"]["delivered"]), unapplied or 0)


async def wait_until_settled(
    sessionmaker, psp_url: str, accepted: list[Accepted], timeout: float
) -> tuple[dict[str, OrderRecords], Webhooks, float]:
    """Poll until every accepted order is settled and the provider's webhooks are all applied, or
    ``timeout`` passes; returns the orders, the webhooks left and the wait."""
    ids = [order.order_id for order in accepted]
    started = time.monotonic()
    while True:
        records = await load_records(sessionmaker, ids)
        webhooks = await webhooks_in_flight(sessionmaker, psp_url)
        settled = len(records) == len(ids) and not any(r.unsettled() for r in records.values())
        if (settled and webhooks.quiet) or time.monotonic() - started > timeout:
            return records, webhooks, time.monotonic() - started
        await asyncio.sleep(1)


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
    records, webhooks, waited = await wait_until_settled(sessionmaker, psp_url, accepted, settle_timeout)
    verdict.figures["settled after faults (s)"] = round(waited, 1)
    lost = [a.order_id for a in accepted if a.order_id not in records]
    unsettled = {r.id: r.unsettled() for r in records.values() if r.unsettled()}
    if lost:
        verdict.violations.append(f"{len(lost)} accepted orders lost, e.g. {lost[:EXAMPLES]}")
    if unsettled:
        why = Counter(unsettled.values())
        verdict.violations.append(
            f"{len(unsettled)} orders not settled {settle_timeout:.0f}s after the faults "
            f"({', '.join(f'{w} {n}' for w, n in why.most_common())}), e.g. {list(unsettled)[:EXAMPLES]}"
        )
    if not webhooks.quiet:
        verdict.violations.append(
            f"provider webhooks still in flight {settle_timeout:.0f}s after the faults: "
            f"{webhooks.undelivered} not acknowledged, {webhooks.unapplied} acknowledged but not applied"
        )
    outcomes = Counter((r.order.status, r.order.reason) for r in records.values())
    verdict.figures["outcomes"] = ", ".join(
        f"{s}{'/' + r if r else ''} {n}" for (s, r), n in sorted(outcomes.items(), key=lambda item: -item[1])
    )
    verdict.figures.update(_after_sale_figures(records))
    verdict.violations.extend(_refund_requests_kept(accepted, records))

    async with sessionmaker() as session:
        for line in await invariant_violations(session):
            verdict.violations.append(line)
        mismatches = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.outcome == "mismatch")
        )
    verdict.figures["webhook events refused as mismatches"] = mismatches or 0

    money = judge_money(records, await provider_books(psp_url, list(records)))
    verdict.figures.update(money.figures)
    verdict.violations.extend(money.violations)

    await _judge_emails(verdict, sessionmaker, mail_sink, settle_timeout, load_ended_at)
    return verdict


def _refund_requests_kept(accepted: list[Accepted], records: dict[str, OrderRecords]) -> list[str]:
    """Each refund request answered 202 made exactly one refund: none lost, none doubled by a retry
    with its key. Orders with a request that went unanswered are left out (it may or may not count)."""
    wrong = []
    for order in accepted:
        if order.refunds_accepted is None or order.order_id not in records:
            continue
        made = sum(1 for refund in records[order.order_id].refunds if refund.reason == REFUND_REASON)
        if made != order.refunds_accepted:
            wrong.append(f"order {order.order_id}: {order.refunds_accepted} accepted, {made} made")
    if not wrong:
        return []
    return [
        f"{len(wrong)} orders whose accepted refund requests did not make one refund each, "
        f"e.g. {'; '.join(wrong[:EXAMPLES])}"
    ]


def _after_sale_figures(records: dict[str, OrderRecords]) -> dict[str, object]:
    """What our records say became of refunds, returns and payment attempts."""
    refunds = [refund for r in records.values() for refund in r.refunds]
    returns = [ret for r in records.values() for ret in r.returns]
    by_status = Counter(refund.status for refund in refunds)
    payments = Counter(payment.status for r in records.values() for payment in r.order.payments)
    asked = [refund for refund in refunds if not refund.by_the_order_flow and refund.return_id is None]
    received = [ret for ret in returns if ret.status in (ReturnStatus.RECEIVED, ReturnStatus.REFUNDED)]
    replaced = [
        payment
        for r in records.values()
        for payment in r.order.payments
        if r.order.payment is not None and payment.id != r.order.payment.id
    ]
    return {
        "refunds in our records: succeeded / failed / pending": (
            f"{by_status[RefundStatus.SUCCEEDED]} / {by_status[RefundStatus.FAILED]} / "
            f"{by_status[RefundStatus.PENDING]}"
        ),
        "refunds the operator asked for / for returns / by the order flow": (
            f"{len(asked)} / {sum(1 for f in refunds if f.return_id)} / "
            f"{sum(1 for f in refunds if f.by_the_order_flow)}"
        ),
        "payments partially refunded / refunded": (
            f"{payments[PaymentStatus.PARTIALLY_REFUNDED]} / {payments[PaymentStatus.REFUNDED]}"
        ),
        "returns: requested / received restocked / received not restocked / rejected": (
            f"{len(returns)} / {sum(1 for ret in received if ret.restocked)} / "
            f"{sum(1 for ret in received if not ret.restocked)} / "
            f"{sum(1 for ret in returns if ret.status == ReturnStatus.REJECTED)}"
        ),
        "replaced payment attempts (captured anyway)": (
            f"{len(replaced)} ({sum(1 for p in replaced if p.status in CAPTURED)})"
        ),
    }


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
    everything = await load_records(sessionmaker, await all_order_ids(sessionmaker))
    findings = judge_emails(
        expected_emails(everything.values()),
        [Arrival.of(at, message) for at, message in mail_sink.received()],
        await load_ledger(sessionmaker),
        load_ended_at,
        orders=len(everything),
    )
    verdict.figures.update(findings.figures)
    verdict.violations.extend(findings.violations)
