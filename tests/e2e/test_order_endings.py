"""End to end: every way an order ends, through the real processes (HOLD_SECONDS is 3 here)."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime

from tests.e2e.conftest import HOLD_SECONDS, with_each_provider
from tests.support.polling import eventually
from tests.support.report import percentile, report

FINAL = {"PLACED", "CANCELLED", "REJECTED"}


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


@with_each_provider
async def test_unpaid_holds_expire_on_time_and_give_stock_back(api):
    sku = await api.item(stock=20)
    # Two unpaid orders per customer: well under the hoarding limit.
    tokens = [await api.customer() for _ in range(5)]
    accepted = [
        (token, await api.order(token, {sku: 1}, payment={"method": "token", "token": "pm_card_no_response"}))
        for token in tokens
        for _ in range(2)
    ]

    lateness_ms = []
    for token, (_, body, _) in accepted:
        order = await api.final_order(token, body["id"], {"CANCELLED"}, timeout=HOLD_SECONDS + 30)
        assert order["reason"] == "payment_timeout" and order["payment"]["status"] == "CANCELLED"
        cancelled_at = parse(order["history"][-1]["at"])
        lateness_ms.append((cancelled_at - parse(order["hold_expires_at"])).total_seconds() * 1000)

    assert await api.available(sku) == 20
    assert min(lateness_ms) >= 0
    report(
        f"expiry lateness over {len(lateness_ms)} holds of {HOLD_SECONDS}s (expires_at -> stock released): "
        f"p50 {percentile(lateness_ms, 0.5):.0f} ms, max {max(lateness_ms):.0f} ms"
    )


@with_each_provider
async def test_late_payment_reinstates_the_order(api):
    token, sku = await api.customer(), await api.item(stock=2)
    _, body, _ = await api.order(token, {sku: 1}, payment={"method": "redirect"})
    url = await api.checkout_url(token, body["id"])

    # The customer pays in time, but the provider's notification arrives after the hold ran out.
    async with api.client.post(
        f"{url}/approve", params={"webhook_delay_s": str(HOLD_SECONDS + 3)}
    ) as response:
        assert response.status == 200
    await api.final_order(token, body["id"], {"CANCELLED"}, timeout=HOLD_SECONDS + 20)

    order = await api.final_order(token, body["id"], {"PLACED"}, timeout=30)
    assert [(h["status"], h["reason"]) for h in order["history"]] == [
        ("PENDING", None),
        ("AWAITING_PAYMENT", None),
        ("CANCELLED", "payment_timeout"),
        ("PLACED", None),
    ]
    assert order["history"][-1]["note"] == "late payment: reinstated"
    assert order["payment"]["status"] == "SUCCEEDED"
    assert await api.available(sku) == 1


@with_each_provider
async def test_cancel_before_payment_gives_stock_back(api):
    token, sku = await api.customer(), await api.item(stock=3)
    _, body, _ = await api.order(token, {sku: 2}, payment={"method": "redirect"})
    await api.final_order(token, body["id"], {"AWAITING_PAYMENT"})

    status, _, _ = await api.call("POST", f"/orders/{body['id']}/cancel", token=token)

    assert status == 202
    order = await api.final_order(token, body["id"], {"CANCELLED"})
    assert order["reason"] == "customer_cancelled"
    assert await api.available(sku) == 3
    again, _, _ = await api.call("POST", f"/orders/{body['id']}/cancel", token=token)
    assert again == 202
    assert (await api.final_order(token, body["id"], {"CANCELLED"}))["history"] == order["history"]


@with_each_provider
async def test_cancel_after_payment_refunds_and_gives_stock_back(api, fleet):
    token, sku = await api.customer(), await api.item(stock=3)
    _, body, _ = await api.order(token, {sku: 1})
    await api.final_order(token, body["id"], {"PLACED"})
    assert await api.available(sku) == 2

    status, _, _ = await api.call("POST", f"/orders/{body['id']}/cancel", token=api.admin_token)
    assert status == 202

    async def refunded():
        _, order, _ = await api.call("GET", f"/orders/{body['id']}", token=token)
        return order if order["payment"]["status"] == "REFUNDED" else None

    order = await eventually(refunded, timeout=30, what="payment REFUNDED")
    assert (order["status"], order["reason"]) == ("CANCELLED", "admin_cancelled")
    assert await api.available(sku) == 3
    async with api.client.get(f"{fleet.psp_url}/v1/payments", params={"order_id": body["id"]}) as response:
        [payment] = (await response.json())["data"]
    async with api.client.get(
        f"{fleet.psp_url}/v1/refunds", params={"payment_id": payment["id"]}
    ) as response:
        assert len((await response.json())["data"]) == 1


async def test_fulfilment_ships_and_delivers_and_then_refuses_cancel(api):
    token, sku = await api.customer(), await api.item(stock=1)
    _, body, _ = await api.order(token, {sku: 1})
    await api.final_order(token, body["id"], {"PLACED"})

    shipped, order, _ = await api.call("POST", f"/orders/{body['id']}/ship", token=api.admin_token)
    assert shipped == 200 and order["status"] == "SHIPPED"
    refused, _, response = await api.call("POST", f"/orders/{body['id']}/cancel", token=token)
    assert refused == 409 and response.content_type == "application/problem+json"
    delivered, order, _ = await api.call("POST", f"/orders/{body['id']}/deliver", token=api.admin_token)
    assert delivered == 200 and order["status"] == "DELIVERED"
    assert [h["status"] for h in order["history"]][-2:] == ["SHIPPED", "DELIVERED"]
    customer_ships, _, _ = await api.call("POST", f"/orders/{body['id']}/ship", token=token)
    assert customer_ships in (401, 403)


async def test_flash_sale_sells_exactly_the_stock(api):
    buyers, units = 200, 5
    sku = await api.item(stock=units)
    tokens = await asyncio.gather(*(api.customer() for _ in range(buyers)))

    answers = await asyncio.gather(*(api.order(token, {sku: 1}) for token in tokens))

    assert sorted({status for status, _, _ in answers}) == [202]
    # Under this load a winner's payment can outlive the 3-second hold: the order is cancelled and
    # its unit goes back. Its late payment then reinstates it if the unit is still there, or is
    # refunded if a later buyer took it. Either way the stock is sold exactly once.
    finals = await asyncio.gather(
        *(
            api.order_when(token, body["id"], settled, timeout=60, what=f"order {body['id']} settled")
            for token, (_, body, _) in zip(tokens, answers, strict=True)
        )
    )
    outcomes = [(order["status"], order["reason"]) for order in finals]
    assert outcomes.count(("PLACED", None)) == units
    assert (
        outcomes.count(("REJECTED", "out_of_stock")) + outcomes.count(("CANCELLED", "payment_timeout"))
        == buyers - units
    )
    assert await api.available(sku) == 0


def settled(order: dict) -> bool:
    """Nothing more will happen to the order: placed, rejected, or cancelled with its money back."""
    if order["status"] in {"PLACED", "REJECTED"}:
        return True
    return order["status"] == "CANCELLED" and (order["payment"] or {}).get("status") == "REFUNDED"


async def test_live_status_stream_ends_at_a_final_status(api):
    token, sku = await api.customer(), await api.item(stock=1)
    _, body, _ = await api.order(token, {sku: 1}, payment={"method": "token", "token": "pm_card_declined"})

    async def read_stream():
        async with api.client.get(
            f"{api.base_url}/orders/{body['id']}/events", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            text = (await response.read()).decode()
        return [json.loads(line[len("data:") :]) for line in text.splitlines() if line.startswith("data:")]

    events = await asyncio.wait_for(read_stream(), timeout=30)

    assert events[-1]["status"] == "CANCELLED" and events[-1]["reason"] == "payment_failed"
    statuses = [event["status"] for event in events]
    assert all(a != b for a, b in itertools.pairwise(statuses))
