"""After the sale: the operator refunds an order in parts, or the customer sends items back.

Partial refunds: a placed order is refunded in two or three parts, some sent at the same moment,
some asking for more than is left (422 ``refund-too-large`` is then the right answer), now and
then one sent again with its key (202, nothing more refunded). Returns: the operator ships and
delivers a placed order, the customer asks to return part of it, the operator receives it
(restocked or not) or rejects it. Every request keeps its Idempotency-Key through outages.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

    from bench.faults.traffic import Accepted, Traffic

#: The reason the run's refunds carry, so the verdict finds exactly the refunds it asked for.
REFUND_REASON = "chaos: partial refund"
RETURN_REASON = "chaos: does not fit"


async def partial_refunds(
    traffic: Traffic, client: aiohttp.ClientSession, order: Accepted, deadline: float
) -> None:
    """Refund the placed order in two or three parts; records on ``order`` how many were accepted."""
    placed = await traffic.wait_until_paid(client, order, deadline)
    if not placed or placed["status"] != "PLACED":
        return
    rng = traffic.rng
    amounts: list[int | None] = list(_parts(placed["total_cents"], rng.choice([2, 3]), rng))
    if rng.random() < 0.4:  # the operator miscounts: the last part is more than is left
        amounts[-1] = (amounts[-1] or 0) + rng.randint(1, max(placed["total_cents"] // 2, 1))
    elif rng.random() < 0.25:  # "whatever is left"
        amounts[-1] = None
    requests = [(uuid.uuid4().hex, amount) for amount in amounts]
    together = rng.random() < 0.5

    async def ask(key: str, amount: int | None, again: bool = False) -> int:
        body: dict[str, Any] = {"reason": REFUND_REASON}
        if amount is not None:
            body["amount_cents"] = amount
        status, answer = await traffic.call(
            client,
            "POST",
            f"{traffic.gateway_url}/orders/{order.order_id}/refund",
            deadline=deadline,
            token=traffic.admin_token,
            json=body,
            headers={"Idempotency-Key": key},
        )
        if again:  # the key's first use was accepted: the same answer, and no second refund
            traffic.answered("refund sent again with its key", status, answer, {202: None})
        else:
            traffic.answered("refund", status, answer, {202: None, 422: "refund-too-large"})
        return status

    # The first part alone, then the others one after the other or all at the same moment.
    statuses = [await ask(*requests[0])]
    if together:
        statuses += _all_answered(
            await asyncio.gather(*(ask(*request) for request in requests[1:]), return_exceptions=True)
        )
    else:
        for request in requests[1:]:
            statuses.append(await ask(*request))
    accepted = sum(1 for status in statuses if status == 202)
    if accepted and rng.random() < 0.3:  # sent again with its key: the same refund, no second one
        first = next(request for request, status in zip(requests, statuses, strict=True) if status == 202)
        await ask(*first, again=True)
    order.refunds_accepted = accepted


async def a_return(traffic: Traffic, client: aiohttp.ClientSession, order: Accepted, deadline: float) -> None:
    """Ship and deliver the placed order, return part of it, and receive or reject the return."""
    placed = await traffic.wait_until_paid(client, order, deadline)
    if not placed or placed["status"] != "PLACED":
        return
    for move in ("ship", "deliver"):
        status, answer = await traffic.call(
            client,
            "POST",
            f"{traffic.gateway_url}/orders/{order.order_id}/{move}",
            deadline=deadline,
            token=traffic.admin_token,
        )
        # 409: the move was made by a try whose answer the outage swallowed (or the order moved on).
        traffic.answered(move, status, answer, {200: None, 409: "illegal-transition"})
    state = await traffic.order_state(client, order, deadline)
    if state["status"] != "DELIVERED":
        return
    status, answer = await traffic.call(
        client,
        "POST",
        f"{traffic.gateway_url}/orders/{order.order_id}/returns",
        deadline=deadline,
        token=order.token,
        json={"items": _part_of(order, traffic), "reason": RETURN_REASON},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    if traffic.endpoint_missing("POST /orders/{id}/returns", status):
        return
    if not traffic.answered("return", status, answer, {201: None}):
        return
    url = f"{traffic.gateway_url}/returns/{answer['id']}"
    choice = traffic.rng.random()
    if choice < 0.35:
        status, answer = await traffic.call(
            client,
            "POST",
            f"{url}/reject",
            deadline=deadline,
            token=traffic.admin_token,
            json={"reason": "chaos: not in the parcel"},
        )
        traffic.answered("return reject", status, answer, {200: None})
        return
    restock = choice < 0.7
    # Now and then the operator clicks twice: both answer the same, one refund and one restock.
    clicks = 2 if traffic.rng.random() < 0.3 else 1

    async def receive() -> int:
        status, answer = await traffic.call(
            client,
            "POST",
            f"{url}/receive",
            deadline=deadline,
            token=traffic.admin_token,
            json={"restock": restock},
        )
        traffic.answered("return receive", status, answer, {202: None})
        return status

    _all_answered(await asyncio.gather(*(receive() for _ in range(clicks)), return_exceptions=True))


def _parts(total: int, count: int, rng: random.Random) -> list[int]:
    """``count`` positive amounts adding up to ``total`` (fewer if ``total`` is too small)."""
    count = max(min(count, total), 1)
    cuts = sorted(rng.sample(range(1, total), count - 1)) if count > 1 else []
    edges = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(edges)]


def _part_of(order: Accepted, traffic: Traffic) -> list[dict[str, Any]]:
    """Part of what the order delivered: one of its lines, one unit when it has more, else all of it."""
    sku = traffic.rng.choice(sorted(order.skus))
    quantity = 1 if len(order.skus) == 1 and order.skus[sku] > 1 else traffic.rng.randint(1, order.skus[sku])
    return [{"sku": sku, "quantity": quantity}]


def _all_answered(results: list[Any]) -> list[int]:
    """The statuses of requests sent together; re-raises the first that gave up, once all ended."""
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)
