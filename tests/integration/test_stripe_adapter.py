"""The Stripe adapter (``providers.payments.stripe_provider``) against the sandbox's Stripe face, over
real HTTP through the official SDK: every call the steps make, and Stripe's errors in the provider
client's words."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
import pytest_asyncio

from providers.payments.provider import IdempotencyConflict, ProviderError, ProviderRefused
from providers.payments.stripe_provider import StripeProvider


def adapter(psp_url: str, api_key: str = "sk_test_adapter") -> StripeProvider:
    return StripeProvider(
        api_key=api_key,
        api_base=f"{psp_url}/stripe",
        redirect_method="ideal",
        return_url_base="http://127.0.0.1:8080",
    )


@pytest_asyncio.fixture
async def stripe_provider(psp_url):
    provider = adapter(psp_url)
    yield provider
    await provider.close()


def ours() -> dict[str, str]:
    return {"order_id": uuid.uuid4().hex, "payment_id": uuid.uuid4().hex}


async def pay(
    provider: StripeProvider, token: str | None = "pm_card_ok", *, key: str | None = None, **changes
):
    request = {
        "idempotency_key": key or f"payment-{uuid.uuid4().hex}",
        "amount_cents": 4500,
        "currency": "USD",
        "method": "token" if token else "redirect",
        "token": token,
        "metadata": ours(),
        **changes,
    }
    return await provider.create_payment(**request)


async def refund(
    provider: StripeProvider,
    payment_id: str,
    amount_cents: int,
    metadata: dict[str, str],
    key: str | None = None,
):
    return await provider.refund(
        idempotency_key=key or f"refund-{uuid.uuid4().hex}",
        provider_payment_id=payment_id,
        amount_cents=amount_cents,
        metadata=metadata,
    )


async def test_a_token_payment_succeeds_and_is_read_back_as_recorded(stripe_provider):
    metadata = ours()
    created = await pay(stripe_provider, metadata=metadata)

    assert created.id.startswith("pi_") and created.status == "succeeded" and created.checkout_url is None
    found = await stripe_provider.get_payment(created.id)
    assert found is not None
    assert (found.id, found.status, found.amount_cents, found.currency) == (
        created.id,
        "succeeded",
        4500,
        "usd",
    )
    assert found.metadata == metadata


async def test_the_same_key_finds_the_same_payment_again(stripe_provider):
    key = f"payment-{uuid.uuid4().hex}"
    metadata = ours()
    first = await pay(stripe_provider, key=key, metadata=metadata)
    again = await pay(stripe_provider, key=key, metadata=metadata)
    assert again.id == first.id


async def test_a_key_reused_for_another_amount_is_an_idempotency_conflict(stripe_provider):
    key = f"payment-{uuid.uuid4().hex}"
    metadata = ours()
    await pay(stripe_provider, key=key, metadata=metadata)
    with pytest.raises(IdempotencyConflict):
        await pay(stripe_provider, key=key, metadata=metadata, amount_cents=4600)


@pytest.mark.parametrize("token", ["pm_card_declined", "pm_card_chargeDeclined"])
async def test_a_declined_card_is_a_failed_payment_not_an_error(stripe_provider, token):
    key = f"payment-{uuid.uuid4().hex}"
    metadata = ours()
    declined = await pay(stripe_provider, token, key=key, metadata=metadata)

    assert declined.id.startswith("pi_") and declined.status == "failed"
    # A retried step gets the same answer: Stripe replays the 402 with the same PaymentIntent.
    assert (await pay(stripe_provider, token, key=key, metadata=metadata)).id == declined.id
    found = await stripe_provider.get_payment(declined.id)
    assert found is not None and found.status == "failed"


async def test_a_payment_the_customer_never_finishes_stays_pending(stripe_provider):
    created = await pay(stripe_provider, "pm_card_no_response")
    assert created.status == "pending"


async def test_an_unknown_payment_method_is_refused_for_good(stripe_provider):
    with pytest.raises(ProviderRefused) as refused:
        await pay(stripe_provider, "pm_card_from_elsewhere")
    assert refused.value.code == "resource_missing"


async def test_a_redirect_payment_has_a_checkout_url_where_the_customer_pays(stripe_provider):
    created = await pay(stripe_provider, None)

    assert created.status == "pending" and created.checkout_url is not None
    async with aiohttp.ClientSession() as client, client.post(f"{created.checkout_url}/approve") as response:
        assert response.status == 200
    found = await stripe_provider.get_payment(created.id)
    assert found is not None and found.status == "succeeded"


async def test_cancel_voids_a_pending_payment_and_again_is_fine(stripe_provider):
    created = await pay(stripe_provider, "pm_card_no_response")

    assert (await stripe_provider.cancel_payment(created.id)).status == "cancelled"
    assert (await stripe_provider.cancel_payment(created.id)).status == "cancelled"
    found = await stripe_provider.get_payment(created.id)
    assert found is not None and found.status == "cancelled"


async def test_cancel_of_a_paid_payment_is_refused_as_already_succeeded(stripe_provider):
    created = await pay(stripe_provider)
    with pytest.raises(ProviderRefused) as refused:
        await stripe_provider.cancel_payment(created.id)
    assert refused.value.code == "already_succeeded"


async def test_refunds_in_parts_each_once_per_key_and_never_beyond_the_capture(stripe_provider):
    metadata = ours()
    created = await pay(stripe_provider, metadata=metadata)
    refund_metadata = {**metadata, "refund_id": uuid.uuid4().hex}
    key = f"refund-{uuid.uuid4().hex}"

    first = await refund(stripe_provider, created.id, 1500, refund_metadata, key)
    again = await refund(stripe_provider, created.id, 1500, refund_metadata, key)

    assert first.id.startswith("re_") and first.status == "succeeded" and again.id == first.id
    found = await stripe_provider.get_refund(first.id)
    assert found is not None
    assert (found.payment_id, found.status, found.amount_cents, found.currency) == (
        created.id,
        "succeeded",
        1500,
        "usd",
    )
    assert found.metadata == refund_metadata
    with pytest.raises(ProviderRefused) as refused:
        await refund(stripe_provider, created.id, 3001, refund_metadata)
    assert refused.value.code == "amount_too_large"
    rest = await refund(stripe_provider, created.id, 3000, refund_metadata)
    assert rest.status == "succeeded"
    with pytest.raises(ProviderRefused) as refused:
        await refund(stripe_provider, created.id, 1, refund_metadata)
    assert refused.value.code == "charge_already_refunded"


async def test_a_refund_of_an_unpaid_payment_is_refused(stripe_provider):
    created = await pay(stripe_provider, "pm_card_no_response")
    with pytest.raises(ProviderRefused):
        await refund(stripe_provider, created.id, 100, ours())


async def test_objects_stripe_does_not_have_are_none(stripe_provider):
    assert await stripe_provider.get_payment("pi_nobody_knows_this_one") is None
    assert await stripe_provider.get_refund("re_nobody_knows_this_one") is None


async def test_a_wrong_key_and_an_unreachable_stripe_are_errors_the_step_retries(psp_url):
    wrong = adapter(psp_url, api_key="sk_live_not_accepted_by_the_face")
    unreachable = adapter("http://127.0.0.1:9")
    try:
        with pytest.raises(ProviderError):
            await pay(wrong)
        with pytest.raises(ProviderError):
            await unreachable.get_payment("pi_1")
    finally:
        await wrong.close()
        await unreachable.close()
