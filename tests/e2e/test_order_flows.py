"""End to end through the real processes: gateway, worker, scheduler, sandbox PSP and mail sink."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import with_each_provider

FINAL = {"PLACED", "CANCELLED", "REJECTED"}


@with_each_provider
async def test_paid_order_is_placed_and_stock_decremented(api, fleet):
    token, sku = await api.customer(), await api.item(stock=10)

    status, body, response = await api.order(token, {sku: 3})

    assert status == 202 and body["status"] == "PENDING"
    assert response.headers["Location"] == f"/orders/{body['id']}"
    order = await api.final_order(token, body["id"], FINAL)
    assert order["status"] == "PLACED" and order["reason"] is None
    assert order["payment"]["status"] == "SUCCEEDED"
    assert [h["status"] for h in order["history"]] == ["PENDING", "AWAITING_PAYMENT", "PLACED"]
    assert order["total_cents"] == 3 * 2500
    # The provider's own id: a PaymentIntent with Stripe.
    prefix = "pi_" if fleet.env["PSP_PROVIDER"] == "stripe" else "pay_"
    assert order["payment"]["provider_payment_id"].startswith(prefix)
    assert await api.available(sku) == 7
    # One order can be followed through every process by its id.
    processes = {
        json.loads(line).get("process") for line in fleet.log_lines(body["id"]) if line.startswith("{")
    }
    assert {"web", "worker"} <= processes


@with_each_provider
async def test_declined_card_cancels_and_gives_stock_back(api):
    token, sku = await api.customer(), await api.item(stock=4)

    _, body, _ = await api.order(token, {sku: 2}, payment={"method": "token", "token": "pm_card_declined"})

    order = await api.final_order(token, body["id"], FINAL)
    assert (order["status"], order["reason"]) == ("CANCELLED", "payment_failed")
    assert order["payment"]["status"] == "FAILED"
    assert await api.available(sku) == 4


async def test_more_than_in_stock_is_rejected_and_stock_unchanged(api):
    token, sku = await api.customer(), await api.item(stock=2)

    _, body, _ = await api.order(token, {sku: 3})

    order = await api.final_order(token, body["id"], FINAL)
    assert (order["status"], order["reason"]) == ("REJECTED", "out_of_stock")
    assert await api.available(sku) == 2


@with_each_provider
@pytest.mark.parametrize(
    ("choice", "ending", "payment", "available"),
    [
        ("approve", ("PLACED", None), "SUCCEEDED", 2),
        ("decline", ("CANCELLED", "payment_failed"), "FAILED", 3),
    ],
)
async def test_a_redirect_payment_ends_as_the_customer_chooses_at_checkout(
    api, choice, ending, payment, available
):
    token, sku = await api.customer(), await api.item(stock=3)

    _, body, _ = await api.order(token, {sku: 1}, payment={"method": "redirect"})

    checkout_url = await api.checkout_url(token, body["id"])
    async with api.client.post(f"{checkout_url}/{choice}") as response:
        assert response.status == 200

    order = await api.final_order(token, body["id"], FINAL)
    assert (order["status"], order["reason"]) == ending
    assert order["payment"]["status"] == payment
    assert await api.available(sku) == available


@pytest.mark.parametrize("fleet", ["stripe"], indirect=True)
@pytest.mark.parametrize(
    ("card", "ending"), [("pm_card_visa", "PLACED"), ("pm_card_chargeDeclined", "CANCELLED")]
)
async def test_stripes_own_test_cards_pay_and_decline(api, card, ending):
    token, sku = await api.customer(), await api.item(stock=2)

    _, body, _ = await api.order(token, {sku: 1}, payment={"method": "token", "token": card})

    order = await api.final_order(token, body["id"], FINAL)
    assert order["status"] == ending
    assert await api.available(sku) == (1 if ending == "PLACED" else 2)


async def test_idempotent_replay_returns_the_same_order(api):
    token, sku = await api.customer(), await api.item(stock=5)

    first = await api.order(token, {sku: 1}, key="replay-key-1")
    again = await api.order(token, {sku: 1}, key="replay-key-1")
    other_body = await api.order(token, {sku: 2}, key="replay-key-1")

    assert first[0] == again[0] == 202 and first[1]["id"] == again[1]["id"]
    assert other_body[0] == 422
    await api.final_order(token, first[1]["id"], FINAL)
    assert await api.available(sku) == 4


async def test_another_customers_order_is_not_found(api):
    owner, stranger, sku = await api.customer(), await api.customer(), await api.item(stock=1)
    _, body, _ = await api.order(owner, {sku: 1})

    status, problem, response = await api.call("GET", f"/orders/{body['id']}", token=stranger)

    assert status == 404 and response.content_type == "application/problem+json"
    assert problem["status"] == 404
    status, _, _ = await api.call("GET", f"/orders/{body['id']}")
    assert status == 401


async def test_malformed_json_is_a_400_problem(api):
    token = await api.customer()

    status, problem, response = await api.call(
        "POST",
        "/orders",
        token=token,
        data=b'{"items": [',
        headers={"Idempotency-Key": "malformed", "Content-Type": "application/json"},
    )

    assert status == 400
    assert response.content_type == "application/problem+json"
    assert {"type", "title", "status", "detail"} <= set(problem)
