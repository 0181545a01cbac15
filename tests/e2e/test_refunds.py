"""End to end: an operator refunds a placed order in parts and then whole, through the real
processes and the provider's webhooks, with each provider."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import with_each_provider


async def refund(api, order_id: str, amount_cents: int | None = None) -> tuple[int, dict]:
    body = {"reason": "goodwill"} if amount_cents is None else {"amount_cents": amount_cents}
    status, payment, _ = await api.call(
        "POST",
        f"/orders/{order_id}/refund",
        token=api.admin_token,
        json=body,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    return status, payment


@with_each_provider
async def test_a_partial_refund_then_the_rest_refunds_exactly_what_was_captured(api, fleet):
    token, sku = await api.customer(), await api.item(stock=5, price_cents=2000)
    _, body, _ = await api.order(token, {sku: 2})
    order_id = body["id"]
    placed = await api.final_order(token, order_id, {"PLACED", "CANCELLED", "REJECTED"})
    assert placed["status"] == "PLACED"

    status, _ = await refund(api, order_id, 1500)
    assert status == 202
    order = await api.order_when(
        token, order_id, lambda order: order["refunded_cents"] == 1500, what="the partial refund confirmed"
    )
    assert order["payment"]["status"] == "PARTIALLY_REFUNDED"

    too_much, problem = await refund(api, order_id, 2501)
    assert too_much == 422 and problem["left_cents"] == 2500

    status, _ = await refund(api, order_id)  # what is left
    assert status == 202
    order = await api.order_when(
        token, order_id, lambda order: order["refunded_cents"] == 4000, what="the whole payment refunded"
    )
    assert order["payment"]["status"] == "REFUNDED"
    # A refund moves money only: the order stays placed and its stock sold.
    assert order["status"] == "PLACED" and await api.available(sku) == 3
    provider_id = order["payment"]["provider_payment_id"]
    async with api.client.get(f"{fleet.psp_url}/v1/refunds", params={"payment_id": provider_id}) as response:
        refunds = (await response.json())["data"]
    assert sorted(r["amount_cents"] for r in refunds) == [1500, 2500]
