"""Correctly signed events that disagree with our records or the provider's change nothing.

Against the real database and the sandbox provider: each refused event ends ``mismatch`` (also
when delivered again), is counted in ``orders_webhook_mismatches_total`` and leaves the orders,
payments, holds, stock and outbox as they were; agreeing events still settle, including a
success that overtakes `pay` recording the provider's payment id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from structlog.testing import capture_logs

from actors.cancel import cancel_order
from actors.pay import idempotency_key as payment_key
from actors.pay import request_payment
from actors.refund import idempotency_key as refund_key
from actors.refund import refund_payment
from actors.reserve import reserve_stock
from actors.settle import settle_payment
from models.tables import OutboxMessage, WebhookEvent
from providers.payments.provider import PaymentProvider, ProviderError
from providers.payments.sandbox import SandboxProvider
from tests.support.factories import available, load_order, make_account, make_item, make_order
from tests.support.scenarios import assert_invariants, awaiting_payment, provider, provider_event

SUCCEEDED, FAILED, REFUNDED = "payment.succeeded", "payment.failed", "refund.succeeded"


# -- helpers -------------------------------------------------------------------------------------


def mismatches(event_type: str, field: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "orders_webhook_mismatches_total", {"event_type": event_type, "field": field}
        )
        or 0.0
    )


async def snapshot(sessionmaker, *order_ids: str) -> list:
    """Everything a settled event could change on these orders."""
    seen = []
    for order_id in order_ids:
        order = await load_order(sessionmaker, order_id)
        async with sessionmaker() as session:
            outbox = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.order_id == order_id)
            )
        seen.append(
            (
                order.status,
                order.reason,
                order.updated_at,
                [(h.status, h.note) for h in order.history],
                [
                    (p.id, p.status, p.provider_payment_id, p.provider_refund_id, p.updated_at)
                    for p in order.payments
                ],
                [(h.sku, h.state, h.quantity, h.released_at) for h in order.holds],
                [await available(sessionmaker, line.sku) for line in order.lines],
                outbox,
            )
        )
    return seen


async def assert_refused(runtime, sessionmaker, event_id: str, event_type: str, field: str, *order_ids: str):
    """Settle ``event_id`` twice: a mismatch both times, counted once under ``field``, nothing changed."""
    before = await snapshot(sessionmaker, *order_ids)
    counted = mismatches(event_type, field)

    outcomes = [await settle_payment(runtime, event_id) for _ in range(2)]

    assert outcomes == ["mismatch", "mismatch"]
    assert mismatches(event_type, field) == counted + 1
    assert await snapshot(sessionmaker, *order_ids) == before
    async with sessionmaker() as session:
        stored = await session.get(WebhookEvent, event_id)
    assert stored.outcome == "mismatch" and stored.processed_at is not None


async def held(runtime, sessionmaker, token: str = "pm_card_ok", price_cents: int = 1000, quantity: int = 2):
    """An order holding ``quantity`` of 5 units, its payment not requested at the provider yet."""
    sku = await make_item(sessionmaker, stock=5, price_cents=price_cents)
    order_id = await make_order(sessionmaker, await make_account(sessionmaker), {sku: quantity}, token=token)
    assert await reserve_stock(runtime, order_id) == "AWAITING_PAYMENT"
    return order_id, sku


async def paid_unrecorded(runtime, sessionmaker, order_id: str, **changes) -> str:
    """Create the order's payment at the provider as `pay` does, without recording its id (pay is slow)."""
    payment = (await load_order(sessionmaker, order_id)).payment
    request = {
        "idempotency_key": payment_key(payment.id),
        "amount_cents": payment.amount_cents,
        "currency": payment.currency,
        "method": payment.method,
        "token": payment.token,
        "metadata": {"order_id": order_id, "payment_id": payment.id},
        **changes,
    }
    return (await runtime.psp.create_payment(**request)).id


async def placed_and_refund_pending(runtime, sessionmaker):
    order_id, sku = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    assert await settle_payment(runtime, await provider_event(sessionmaker, order_id, SUCCEEDED)) == "placed"
    assert await cancel_order(runtime, order_id, "customer_cancelled") == "CANCELLED"
    assert (await load_order(sessionmaker, order_id)).payment.status == "REFUND_PENDING"
    return order_id, sku


# -- amount and currency -------------------------------------------------------------------------


async def test_a_success_for_one_cent_does_not_place_the_order(runtime, sessionmaker):
    order_id, _ = await held(runtime, sessionmaker, price_cents=1999, quantity=1)
    await request_payment(runtime, order_id)  # pm_card_ok: paid in full at the provider
    event = await provider_event(sessionmaker, order_id, SUCCEEDED, amount_cents=1)

    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "amount", order_id)

    # The provider's own event, for the whole amount, still places it.
    assert await settle_payment(runtime, await provider_event(sessionmaker, order_id, SUCCEEDED)) == "placed"


async def test_a_success_in_another_currency_does_not_place_the_order(runtime, sessionmaker):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    event = await provider_event(sessionmaker, order_id, SUCCEEDED, currency="JPY")

    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "currency", order_id)


async def test_a_failure_for_another_amount_does_not_cancel_the_order(runtime, sessionmaker):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_declined")
    event = await provider_event(sessionmaker, order_id, FAILED, amount_cents=5)

    await assert_refused(runtime, sessionmaker, event, FAILED, "amount", order_id)


async def test_an_event_leaving_out_amount_and_currency_is_checked_against_the_provider(
    runtime, sessionmaker
):
    order_id, _ = await held(runtime, sessionmaker)
    # A faulty provider charged one cent for our payment; its event says nothing of amounts.
    provider_id = await paid_unrecorded(runtime, sessionmaker, order_id, amount_cents=1)
    event = await provider_event(
        sessionmaker, order_id, SUCCEEDED, payment_id=provider_id, amount_cents=None, currency=None
    )

    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "amount", order_id)
    assert (await load_order(sessionmaker, order_id)).payment.provider_payment_id is None


# -- whose payment -------------------------------------------------------------------------------


async def test_another_customers_recorded_payment_does_not_place_the_senders_order(runtime, sessionmaker):
    victim, _ = await awaiting_payment(runtime, sessionmaker)  # pending at the provider
    sender, _ = await awaiting_payment(runtime, sessionmaker)
    victim_payment = (await load_order(sessionmaker, victim)).payment
    sender_payment = (await load_order(sessionmaker, sender)).payment
    event = await provider_event(
        sessionmaker,
        sender,
        SUCCEEDED,
        payment_id=victim_payment.provider_payment_id,
        metadata={"order_id": sender, "payment_id": sender_payment.id},
    )

    with capture_logs() as logs:
        await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "order_id", sender, victim)

    [warning] = [entry for entry in logs if entry["event"] == "settle.mismatch"]
    assert warning["disagreed"] == ["order_id", "payment_id"]
    assert warning["ours"] == {"order_id": victim, "payment_id": victim_payment.id}


async def test_another_customers_payment_is_refused_when_neither_id_is_recorded_yet(runtime, sessionmaker):
    victim, _ = await held(runtime, sessionmaker)
    sender, _ = await held(runtime, sessionmaker)
    victim_provider_id = await paid_unrecorded(runtime, sessionmaker, victim)  # paid, its `pay` still running
    sender_payment = (await load_order(sessionmaker, sender)).payment
    event = await provider_event(
        sessionmaker,
        sender,
        SUCCEEDED,
        payment_id=victim_provider_id,
        metadata={"order_id": sender, "payment_id": sender_payment.id},
    )

    # Our records cannot tell; the provider's record of the payment names the victim's order.
    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "order_id", sender, victim)

    assert (await load_order(sessionmaker, sender)).payment.provider_payment_id is None
    genuine = await provider_event(sessionmaker, victim, SUCCEEDED, payment_id=victim_provider_id)
    assert await settle_payment(runtime, genuine) == "placed"


async def test_metadata_naming_another_order_than_the_payments_is_refused(runtime, sessionmaker):
    paid, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    other, _ = await awaiting_payment(runtime, sessionmaker)
    payment = (await load_order(sessionmaker, paid)).payment
    event = await provider_event(
        sessionmaker, paid, SUCCEEDED, metadata={"order_id": other, "payment_id": payment.id}
    )

    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "order_id", paid, other)


@pytest.mark.parametrize("provider_id_recorded", [True, False])
async def test_an_unknown_payment_of_ours_is_refused(runtime, sessionmaker, provider_id_recorded):
    order_id, _ = await held(runtime, sessionmaker)
    if provider_id_recorded:
        await request_payment(runtime, order_id)
        provider_id = (await load_order(sessionmaker, order_id)).payment.provider_payment_id
    else:
        provider_id = await paid_unrecorded(runtime, sessionmaker, order_id)
    event = await provider_event(
        sessionmaker,
        order_id,
        SUCCEEDED,
        payment_id=provider_id,
        metadata={"order_id": order_id, "payment_id": uuid.uuid4().hex},
    )

    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "payment_id", order_id)


async def test_a_provider_id_the_provider_does_not_know_is_refused(runtime, sessionmaker):
    order_id, _ = await held(runtime, sessionmaker)
    event = await provider_event(sessionmaker, order_id, SUCCEEDED, payment_id=f"pay_{uuid.uuid4().hex[:24]}")

    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "provider_payment_id", order_id)
    assert (await load_order(sessionmaker, order_id)).payment.provider_payment_id is None


async def test_a_success_the_provider_has_not_seen_does_not_place_the_order(runtime, sessionmaker):
    # Everything agrees with our records (a leaked secret and the sender's own order), but the
    # provider's record says the payment is still pending.
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_no_response")
    event = await provider_event(sessionmaker, order_id, SUCCEEDED)

    await assert_refused(runtime, sessionmaker, event, SUCCEEDED, "status", order_id)


# -- refunds -------------------------------------------------------------------------------------


def refund_metadata(order_id: str, payment) -> dict[str, str]:
    """The metadata of the order flow's refund of ``payment`` (filed under the payment's id)."""
    return {"order_id": order_id, "payment_id": payment.id, "refund_id": payment.id}


async def test_a_refund_for_another_amount_is_refused(runtime, sessionmaker):
    order_id, _ = await placed_and_refund_pending(runtime, sessionmaker)
    payment = (await load_order(sessionmaker, order_id)).payment
    refund_id = await refund_payment(runtime, order_id, payment.id)
    event = await provider_event(
        sessionmaker, order_id, REFUNDED, refund_id=refund_id, amount_cents=payment.amount_cents - 1
    )

    await assert_refused(runtime, sessionmaker, event, REFUNDED, "amount", order_id)

    right = await provider_event(sessionmaker, order_id, REFUNDED, refund_id=refund_id)
    assert await settle_payment(runtime, right) == "refunded"
    assert (await load_order(sessionmaker, order_id)).payment.status == "REFUNDED"


async def test_a_refund_with_another_refund_id_is_refused(runtime, sessionmaker):
    order_id, _ = await placed_and_refund_pending(runtime, sessionmaker)
    payment = (await load_order(sessionmaker, order_id)).payment
    await refund_payment(runtime, order_id, payment.id)
    # It names our refund, with a provider refund id other than the one the provider gave us.
    event = await provider_event(
        sessionmaker,
        order_id,
        REFUNDED,
        refund_id="re_someone_elses",
        metadata=refund_metadata(order_id, payment),
    )

    await assert_refused(runtime, sessionmaker, event, REFUNDED, "refund_id", order_id)


async def test_a_refund_nobody_asked_for_is_refused(runtime, sessionmaker):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    assert await settle_payment(runtime, await provider_event(sessionmaker, order_id, SUCCEEDED)) == "placed"

    event = await provider_event(sessionmaker, order_id, REFUNDED, refund_id="re_never_asked")
    await assert_refused(runtime, sessionmaker, event, REFUNDED, "refund_not_requested", order_id)


async def test_a_refund_the_provider_has_not_made_does_not_stop_the_real_refund(
    runtime, sessionmaker, psp_url
):
    order_id, _ = await placed_and_refund_pending(runtime, sessionmaker)
    payment = (await load_order(sessionmaker, order_id)).payment
    forged = await provider_event(
        sessionmaker, order_id, REFUNDED, refund_id="re_forged", metadata=refund_metadata(order_id, payment)
    )

    # The provider has no such refund.
    await assert_refused(runtime, sessionmaker, forged, REFUNDED, "refund_id", order_id)

    # Still REFUND_PENDING, so the refund step still asks the provider.
    refund_id = await refund_payment(runtime, order_id, payment.id)
    _, refunds = await provider(psp_url, "GET", "/v1/refunds", payment_id=payment.provider_payment_id)
    assert [r["id"] for r in refunds["data"]] == [refund_id]
    genuine = await provider_event(sessionmaker, order_id, REFUNDED, refund_id=refund_id)
    assert await settle_payment(runtime, genuine) == "refunded"


async def test_a_refund_webhook_overtaking_the_refund_step_is_applied(runtime, sessionmaker):
    order_id, _ = await placed_and_refund_pending(runtime, sessionmaker)
    payment = (await load_order(sessionmaker, order_id)).payment
    # The refund step asked the provider and has not recorded the refund id yet.
    metadata = refund_metadata(order_id, payment)
    refund = await runtime.psp.refund(
        idempotency_key=refund_key(payment.id),
        provider_payment_id=payment.provider_payment_id,
        amount_cents=payment.amount_cents,
        metadata=metadata,
    )
    # Our refund is named by our id in the refund's metadata, as the provider sends it.
    event = await provider_event(sessionmaker, order_id, REFUNDED, refund_id=refund.id, metadata=metadata)

    assert await settle_payment(runtime, event) == "refunded"
    assert (await load_order(sessionmaker, order_id)).payment.status == "REFUNDED"
    await assert_invariants(sessionmaker)


# -- agreeing events still settle ----------------------------------------------------------------


class OvertakenByTheWebhook:
    """A provider client whose success webhook is settled before `create_payment` returns to `pay`."""

    def __init__(self, psp: PaymentProvider, deliver):
        self._psp, self._deliver = psp, deliver
        self.outcome = None

    async def create_payment(self, **request):
        created = await self._psp.create_payment(**request)
        self.outcome = await self._deliver(created.id)
        return created

    def __getattr__(self, name):
        return getattr(self._psp, name)


async def test_a_success_overtaking_pay_places_the_order_once(runtime, sessionmaker, psp_url):
    order_id, sku = await held(runtime, sessionmaker, token="pm_card_ok")

    async def deliver(provider_id: str) -> str:
        assert (await load_order(sessionmaker, order_id)).payment.provider_payment_id is None
        event = await provider_event(sessionmaker, order_id, SUCCEEDED, payment_id=provider_id)
        return await settle_payment(runtime, event, order_id)

    overtaken = OvertakenByTheWebhook(runtime.psp, deliver)
    provider_id = await request_payment(dataclasses.replace(runtime, psp=overtaken), order_id)

    assert overtaken.outcome == "placed"
    order = await load_order(sessionmaker, order_id)
    assert (order.status, order.payment.status, order.payment.provider_payment_id) == (
        "PLACED",
        "SUCCEEDED",
        provider_id,
    )
    assert {h.state for h in order.holds} == {"COMMITTED"} and await available(sessionmaker, sku) == 3
    _, payments = await provider(psp_url, "GET", "/v1/payments", order_id=order_id)
    assert [p["id"] for p in payments["data"]] == [provider_id]
    await assert_invariants(sessionmaker)


async def test_a_refused_event_and_the_real_one_racing_place_the_order_once(runtime, sessionmaker):
    for _ in range(4):
        order_id, sku = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
        wrong = await provider_event(sessionmaker, order_id, SUCCEEDED, amount_cents=1)
        right = await provider_event(sessionmaker, order_id, SUCCEEDED)

        outcomes = await asyncio.gather(settle_payment(runtime, wrong), settle_payment(runtime, right))

        assert outcomes == ["mismatch", "placed"]
        order = await load_order(sessionmaker, order_id)
        assert [h.status for h in order.history].count("PLACED") == 1
        assert await available(sessionmaker, sku) == 3
        await assert_invariants(sessionmaker)


async def test_a_refused_event_delivered_at_once_is_counted_once(runtime, sessionmaker):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    event = await provider_event(sessionmaker, order_id, SUCCEEDED, currency="EUR")
    counted = mismatches(SUCCEEDED, "currency")

    outcomes = await asyncio.gather(*(settle_payment(runtime, event) for _ in range(3)))

    assert outcomes == ["mismatch"] * 3
    assert mismatches(SUCCEEDED, "currency") == counted + 1
    assert (await load_order(sessionmaker, order_id)).status == "AWAITING_PAYMENT"


async def test_the_mismatch_warning_says_what_disagreed_and_no_secret(runtime, sessionmaker, settings):
    order_id, _ = await awaiting_payment(runtime, sessionmaker, token="pm_card_ok")
    event = await provider_event(sessionmaker, order_id, SUCCEEDED, amount_cents=1)

    with capture_logs() as logs:
        assert await settle_payment(runtime, event, order_id) == "mismatch"

    [warning] = [entry for entry in logs if entry["event"] == "settle.mismatch"]
    assert warning["log_level"] == "warning"
    assert (warning["disagreed"], warning["claimed"], warning["ours"]) == (
        ["amount"],
        {"amount": 1},
        {"amount": 2000},
    )
    assert settings.psp_webhook_secret not in repr(logs) and "pm_card_ok" not in repr(logs)


async def test_an_unreachable_provider_leaves_the_event_for_a_retry(runtime, sessionmaker):
    order_id, _ = await held(runtime, sessionmaker)
    provider_id = await paid_unrecorded(runtime, sessionmaker, order_id)
    event = await provider_event(sessionmaker, order_id, SUCCEEDED, payment_id=provider_id)
    down = SandboxProvider("http://127.0.0.1:9", timeout_seconds=2)

    with pytest.raises(ProviderError):
        await settle_payment(dataclasses.replace(runtime, psp=down), event)
    await down.close()

    async with sessionmaker() as session:
        assert (await session.get(WebhookEvent, event)).processed_at is None
    assert (await load_order(sessionmaker, order_id)).status == "AWAITING_PAYMENT"
    assert await settle_payment(runtime, event) == "placed"


# -- the provider client's read ------------------------------------------------------------------


async def test_the_client_reads_a_payment_as_the_provider_records_it(runtime, sessionmaker):
    order_id, _ = await held(runtime, sessionmaker, token="pm_card_ok")
    provider_id = await paid_unrecorded(runtime, sessionmaker, order_id)
    payment = (await load_order(sessionmaker, order_id)).payment

    record = await runtime.psp.get_payment(provider_id)

    assert (record.id, record.status, record.amount_cents, record.currency, record.amount_refunded_cents) == (
        provider_id,
        "succeeded",
        payment.amount_cents,
        "USD",
        0,
    )
    assert record.metadata == {"order_id": order_id, "payment_id": payment.id}


@pytest.mark.parametrize(
    "provider_id", ["pay_nobody", "..", ".", "../refunds", "x/../../v1/payments", "a?b=1#c"]
)
async def test_the_client_reads_nothing_for_an_id_the_provider_does_not_have(runtime, provider_id):
    assert await runtime.psp.get_payment(provider_id) is None
