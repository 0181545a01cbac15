"""End to end: a delivered order's items come back, go on sale again and are refunded, through the
real processes (gateway, worker, scheduler, the provider and its webhooks), with each provider."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import with_each_provider
from tests.support.polling import eventually


@with_each_provider
async def test_a_return_with_restock_is_refunded_and_its_units_are_on_sale_again(api):
    token, sku = await api.customer(), await api.item(stock=10, price_cents=1500)
    _, body, _ = await api.order(token, {sku: 3})
    order_id = body["id"]
    placed = await api.final_order(token, order_id, {"PLACED", "CANCELLED", "REJECTED"})
    assert placed["status"] == "PLACED"
    for action in ("ship", "deliver"):
        status, _, _ = await api.call("POST", f"/orders/{order_id}/{action}", token=api.admin_token)
        assert status == 200
    assert await api.available(sku) == 7

    status, asked, response = await api.call(
        "POST",
        f"/orders/{order_id}/returns",
        token=token,
        json={"items": [{"sku": sku, "quantity": 2}], "reason": "too many"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert status == 201 and asked["status"] == "REQUESTED"
    assert response.headers["Location"] == f"/returns/{asked['id']}"

    status, received, _ = await api.call(
        "POST", f"/returns/{asked['id']}/receive", token=api.admin_token, json={"restock": True}
    )
    assert status == 202 and received["status"] == "RECEIVED" and received["restocked"] is True
    assert await api.available(sku) == 9

    async def refunded():
        status, found, _ = await api.call("GET", f"/returns/{asked['id']}", token=token)
        return found if status == 200 and found["status"] == "REFUNDED" else None

    await eventually(refunded, timeout=30, what=f"return {asked['id']} REFUNDED")
    order = await api.order_when(
        token, order_id, lambda order: order["refunded_cents"] == 2 * 1500, what="refunded_cents on the order"
    )
    assert order["status"] == "DELIVERED"
    assert [(r["id"], r["status"]) for r in order["returns"]] == [(asked["id"], "REFUNDED")]
    assert order["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert await api.available(sku) == 9
