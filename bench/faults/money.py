"""The chaos run's money check: the provider's own books, per order, against each other and ours.

The sandbox provider is asked what it did (``GET /v1/payments?order_id=``, ``GET /v1/refunds?
payment_id=``) and :func:`judge_money` checks, for every settled order:

- the provider never refunded more than it captured of any payment;
- at most one charge is kept per order (captured minus refunded above zero);
- a CANCELLED or REJECTED order keeps no charge, and an order that went ahead keeps its charge
  unless someone (the operator, a return) asked for its money back;
- our records agree with the provider's: a payment is captured in ours exactly when it succeeded
  there, and per payment the sum of our SUCCEEDED refunds is what the provider refunded; every
  provider refund is one of ours, made once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.faults.records import OrderRecords
from models.state import CAPTURED, OrderStatus, RefundStatus

#: Orders that went ahead: their charge is what the customer pays for them.
LIVE = (OrderStatus.PLACED, OrderStatus.SHIPPED, OrderStatus.DELIVERED)
ENDED_WITHOUT_SALE = (OrderStatus.CANCELLED, OrderStatus.REJECTED)
#: Provider calls at once while reading its books.
CONCURRENCY = 50
EXAMPLES = 3


@dataclass(frozen=True)
class ProviderRefund:
    id: str
    amount_cents: int
    our_refund_id: str | None


@dataclass(frozen=True)
class ProviderPayment:
    """One payment as the provider's books have it, with its refunds."""

    id: str
    our_payment_id: str | None
    status: str
    amount_cents: int
    refunds: tuple[ProviderRefund, ...] = ()

    @property
    def captured(self) -> bool:
        return self.status == "succeeded"

    @property
    def refunded_cents(self) -> int:
        return sum(refund.amount_cents for refund in self.refunds)

    @property
    def kept_cents(self) -> int:
        """What the customer is still charged of this payment."""
        return self.amount_cents - self.refunded_cents if self.captured else 0


async def provider_books(psp_url: str, order_ids: list[str]) -> dict[str, list[ProviderPayment]]:
    """Per order: its payments at the provider, each with its refunds."""
    books: dict[str, list[ProviderPayment]] = {}
    async with aiohttp.ClientSession() as client:

        async def listed(path: str, **params: str) -> list[dict[str, Any]]:
            async with client.get(f"{psp_url}{path}", params=params) as response:
                response.raise_for_status()
                return (await response.json())["data"]

        async def one(order_id: str) -> None:
            payments = []
            for payment in await listed("/v1/payments", order_id=order_id):
                # Only a captured payment can have refunds (a payment saying it has some is asked too).
                asked = payment["status"] == "succeeded" or payment.get("amount_refunded_cents")
                refunds = await listed("/v1/refunds", payment_id=payment["id"]) if asked else []
                payments.append(
                    ProviderPayment(
                        id=payment["id"],
                        our_payment_id=payment.get("metadata", {}).get("payment_id"),
                        status=payment["status"],
                        amount_cents=int(payment["amount_cents"]),
                        refunds=tuple(
                            ProviderRefund(
                                r["id"], int(r["amount_cents"]), r.get("metadata", {}).get("refund_id")
                            )
                            for r in refunds
                        ),
                    )
                )
            books[order_id] = payments

        for start in range(0, len(order_ids), CONCURRENCY):
            await asyncio.gather(*(one(order_id) for order_id in order_ids[start : start + CONCURRENCY]))
    return books


@dataclass
class MoneyFindings:
    figures: dict[str, object] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def judge_money(records: dict[str, OrderRecords], books: dict[str, list[ProviderPayment]]) -> MoneyFindings:
    """Check the provider's books of every settled order against themselves and our records.

    Unsettled orders are left out (the verdict reports them on their own): their money may still move.
    """
    findings = MoneyFindings()
    problems: dict[str, list[str]] = {}

    def problem(kind: str, text: str) -> None:
        problems.setdefault(kind, []).append(text)

    replaced_refunded = 0
    for order_id, payments in books.items():
        mine = records.get(order_id)
        if mine is None or mine.unsettled():
            continue
        order = mine.order
        for payment in payments:
            if payment.refunded_cents > payment.amount_cents or (payment.refunds and not payment.captured):
                problem(
                    "refunded more than it captured",
                    f"order {order_id} payment {payment.id}: {payment.refunded_cents} refunded of "
                    f"{payment.amount_cents if payment.captured else 0} captured",
                )
        kept = [payment for payment in payments if payment.kept_cents > 0]
        if len(kept) > 1:
            problem(
                "keep more than one charge",
                f"order {order_id}: {len(kept)} charges kept ({', '.join(p.id for p in kept)})",
            )
        if kept and order.status in ENDED_WITHOUT_SALE:
            problem(
                "ended without a sale but keep a charge",
                f"order {order_id}: {order.status} but {kept[0].kept_cents} cents of {kept[0].id} kept",
            )
        asked_back = any(not refund.by_the_order_flow for refund in mine.refunds)
        if order.status in LIVE and any(p.captured for p in payments) and not kept and not asked_back:
            problem(
                "went ahead but had their charge refunded by the order flow",
                f"order {order_id}: {order.status} but every charge refunded though nobody asked",
            )
        for text in _disagreements(mine, payments):
            problem("disagree with the provider's books", text)
        current = order.payment
        replaced_refunded += sum(
            1
            for payment in payments
            if payment.captured
            and payment.kept_cents == 0
            and current is not None
            and payment.our_payment_id != current.id
        )

    everything = [payment for payments in books.values() for payment in payments]
    figures = findings.figures
    figures["provider: charges / refunds / cents refunded"] = (
        f"{sum(p.captured for p in everything)} / {sum(len(p.refunds) for p in everything)} / "
        f"{sum(p.refunded_cents for p in everything)}"
    )
    figures["provider: orders with refunds in several parts"] = sum(
        1 for payments in books.values() if sum(len(p.refunds) for p in payments) > 1
    )
    figures["replaced attempts that succeeded anyway, refunded"] = replaced_refunded
    for kind, texts in problems.items():
        findings.violations.append(f"{len(texts)} orders {kind}, e.g. {'; '.join(texts[:EXAMPLES])}")
    return findings


def _disagreements(records: OrderRecords, payments: list[ProviderPayment]) -> list[str]:
    """Where our records of one order and the provider's books differ."""
    found = []
    order_id = records.id
    ours = {payment.id: payment for payment in records.order.payments}
    theirs = {payment.our_payment_id: payment for payment in payments}
    confirmed = Counter[str]()
    for refund in records.refunds:
        if refund.status == RefundStatus.SUCCEEDED:
            confirmed[refund.payment_id] += refund.amount_cents
    for payment_id, payment in ours.items():
        provider = theirs.get(payment_id)
        if (payment.status in CAPTURED) != (provider is not None and provider.captured):
            found.append(
                f"order {order_id} payment {payment_id}: {payment.status} in ours, "
                f"{provider.status if provider else 'unknown'} at the provider"
            )
        refunded = provider.refunded_cents if provider is not None else 0
        if confirmed[payment_id] != refunded:
            found.append(
                f"order {order_id} payment {payment_id}: our confirmed refunds add up to "
                f"{confirmed[payment_id]}, the provider refunded {refunded}"
            )
    strangers = [payment.id for payment in payments if payment.our_payment_id not in ours]
    if strangers:
        found.append(f"order {order_id}: provider payments {strangers} are none of ours")
    ours_refunds = {refund.id for refund in records.refunds if refund.status == RefundStatus.SUCCEEDED}
    made = Counter(refund.our_refund_id for payment in payments for refund in payment.refunds)
    for refund_id, times in made.items():
        if refund_id not in ours_refunds:
            found.append(f"order {order_id}: provider refund for {refund_id}, none of our confirmed refunds")
        elif times > 1:
            found.append(f"order {order_id}: our refund {refund_id} made {times} times at the provider")
    return found
