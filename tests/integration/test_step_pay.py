"""pay against the real database and the sandbox provider over HTTP: one charge per attempt."""

from __future__ import annotations

import asyncio

import aiohttp

from actors.pay import request_payment
from actors.reserve import reserve_stock
from tests.support.factories import (
    available,
    load_order,
    make_account,
    make_item,
    make_order,
)


async def provider_payments(psp_url: str, order_id: str) -> list[dict]:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{psp_url}/v1/payments", params={"order_id": order_id}) as response:
            body = await response.json()
    return body["data"]


async def awaiting_payment(runtime, sessionmaker, **payment):
    account = await make_account(sessionmaker)
    sku = await make_item(sessionmaker, stock=5)
    order_id = await make_order(sessionmaker, account, {sku: 1}, **payment)
    await reserve_stock(runtime, order_id)
    return order_id, sku


async def test_pay_creates_one_provider_payment_and_stores_its_id(runtime, sessionmaker, psp_url):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_no_response")

    provider_id = await request_payment(runtime, order_id)

    order = await load_order(sessionmaker, order_id)
    assert provider_id and order.payment.provider_payment_id == provider_id
    assert [p["id"] for p in await provider_payments(psp_url, order_id)] == [provider_id]


async def test_pay_delivered_twice_or_at_once_charges_once(runtime, sessionmaker, psp_url):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")

    await asyncio.gather(*(request_payment(runtime, order_id) for _ in range(3)))
    await request_payment(runtime, order_id)

    payments = await provider_payments(psp_url, order_id)
    assert len(payments) == 1
    order = await load_order(sessionmaker, order_id)
    assert order.payment.provider_payment_id == payments[0]["id"]


async def test_redirect_payment_exposes_checkout_url(runtime, sessionmaker, psp_url):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, method="redirect", token=None)

    await request_payment(runtime, order_id)

    order = await load_order(sessionmaker, order_id)
    assert order.payment.checkout_url and order.payment.checkout_url.startswith(psp_url)
    assert order.status == "AWAITING_PAYMENT"


async def test_token_the_provider_refuses_cancels_and_gives_stock_back(runtime, sessionmaker, psp_url):
    order_id, sku = await awaiting_payment(runtime, sessionmaker, token="pm_card_bogus")

    assert await request_payment(runtime, order_id) is None

    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.reason, order.payment.status) == ("CANCELLED", "payment_failed", "FAILED")
    assert await available(sessionmaker, sku) == 5


async def test_pay_for_an_order_no_longer_awaiting_payment_does_nothing(runtime, sessionmaker, psp_url):
    account = await make_account(sessionmaker)
    order_id = await make_order(sessionmaker, account, {"NO-SUCH-SKU": 1})
    await reserve_stock(runtime, order_id)  # rejected: unknown_item

    assert await request_payment(runtime, order_id) is None
    assert await provider_payments(psp_url, order_id) == []
