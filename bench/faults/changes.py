"""Before the order ships: the customer changes where it goes, or how it is paid.

Address changes: one to three ``PATCH /orders/{id}``, two of them now and then at the same
moment; sometimes the shop ships first, and the change is then refused (409
``address-not-changeable``). A PATCH carries no key: repeating it after an outage sends the same
address, which changes nothing a second time.

Payment changes: an order waiting on the provider's checkout page or on a card that never
answers gets paid another way (``POST /orders/{id}/payment``, with its Idempotency-Key): a card
that pays, or another checkout page the customer approves. Sometimes the customer also approves
the old page after the change, which races the void of the replaced attempt: if the provider
takes that payment, the fleet must refund it whole and keep the order on its current attempt.
With 5-second holds, a change that comes after the hold ended is refused (409
``payment-not-changeable``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

    from bench.faults.traffic import Accepted, Traffic

UNPAID = ("PENDING", "AWAITING_PAYMENT")


def _address(traffic: Traffic) -> dict[str, Any]:
    return {
        "name": "Chaos Shopper",
        "line1": f"{traffic.rng.randint(1, 9999)} Fault Lane",
        "city": "Outage City",
        "postal_code": f"{traffic.rng.randint(10000, 99999)}",
        "country": "US",
    }


async def address_changes(
    traffic: Traffic, client: aiohttp.ClientSession, order: Accepted, deadline: float
) -> None:
    """Change the order's address once or more (some at once), before or after it ships."""
    rng = traffic.rng

    async def change() -> int:
        status, answer = await traffic.call(
            client,
            "PATCH",
            f"{traffic.gateway_url}/orders/{order.order_id}",
            deadline=deadline,
            token=order.token,
            json={"shipping_address": _address(traffic)},
        )
        # 409 once the order shipped or ended (a redirect order nobody paid runs out of time).
        traffic.answered("address change", status, answer, {200: None, 409: "address-not-changeable"})
        return status

    if rng.random() < 0.2:
        # The shop is quicker: the order ships before the customer writes.
        placed = await traffic.wait_until_paid(client, order, deadline)
        if placed and placed["status"] == "PLACED":
            status, answer = await traffic.call(
                client,
                "POST",
                f"{traffic.gateway_url}/orders/{order.order_id}/ship",
                deadline=deadline,
                token=traffic.admin_token,
            )
            traffic.answered("ship", status, answer, {200: None, 409: "illegal-transition"})
    await change()
    for _ in range(rng.randint(0, 2)):
        if rng.random() < 0.5:
            results = await asyncio.gather(change(), change(), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        else:
            await change()
    state = await traffic.order_state(client, order, deadline)
    checkout = (state.get("payment") or {}).get("checkout_url")
    if checkout and state["status"] == "AWAITING_PAYMENT":
        await approve(traffic, client, checkout, deadline, "checkout approve")


async def payment_change(
    traffic: Traffic, client: aiohttp.ClientSession, order: Accepted, deadline: float
) -> None:
    """Pay the order another way while it awaits payment, and sometimes approve the old page too."""
    rng = traffic.rng
    state = await traffic.wait_for(
        client,
        order,
        lambda s: (
            s["status"] not in UNPAID
            or (
                s["status"] == "AWAITING_PAYMENT"
                and (s["payment"]["method"] != "redirect" or s["payment"].get("checkout_url"))
            )
        ),
        deadline,
    )
    if not state or state["status"] != "AWAITING_PAYMENT":
        traffic.tally[("payment change", "not tried: no longer awaiting payment")] += 1
        return
    old = state["payment"]
    new = rng.choice([{"method": "token", "token": "pm_card_ok"}, {"method": "redirect"}])
    key = uuid.uuid4().hex

    async def change() -> tuple[int, Any]:
        status, answer = await traffic.call(
            client,
            "POST",
            f"{traffic.gateway_url}/orders/{order.order_id}/payment",
            deadline=deadline,
            token=order.token,
            json={"payment": new},
            headers={"Idempotency-Key": key},
        )
        return status, answer

    status, answer = await change()
    if traffic.endpoint_missing("POST /orders/{id}/payment", status):
        return
    if not traffic.answered("payment change", status, answer, {202: None, 409: "payment-not-changeable"}):
        return
    if status == 409:
        return
    if rng.random() < 0.2:  # sent again with its key: the same change, no third attempt
        status, answer = await change()
        traffic.answered("payment change replayed", status, answer, {202: None})
    old_page = old.get("checkout_url")
    approve_old = old_page is not None and rng.random() < 0.6
    if approve_old and rng.random() < 0.5:
        # At once: the void of the replaced attempt is most likely still on its way.
        await approve(traffic, client, old_page, deadline, "old checkout approve")
        approve_old = False
    if new["method"] == "redirect":
        paying = await traffic.wait_for(
            client,
            order,
            lambda s: (
                s["status"] not in UNPAID
                or (s["payment"]["id"] != old["id"] and s["payment"].get("checkout_url"))
            ),
            deadline,
        )
        if paying and paying["status"] == "AWAITING_PAYMENT":
            await approve(
                traffic, client, paying["payment"]["checkout_url"], deadline, "new checkout approve"
            )
    if approve_old:
        await approve(traffic, client, old_page, deadline, "old checkout approve")


async def approve(
    traffic: Traffic, client: aiohttp.ClientSession, page: str, deadline: float, what: str
) -> None:
    """The customer pays on the provider's page: 200, or 409 when the payment was cancelled or decided."""
    status, answer = await traffic.call(client, "POST", f"{page}/approve", deadline=deadline)
    traffic.tally[(what, str(status))] += 1
    if status not in (200, 409):
        traffic.unexpected.append(f"{what}: {status} {answer}")
