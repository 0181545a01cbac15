"""The sandbox provider's Stripe face, driven by the real ``stripe`` SDK (async, aiohttp).

The provider runs in-process over real HTTP, with a small receiver app as the gateway's webhook
endpoint: it verifies each Stripe event with ``stripe.Webhook.construct_event``, as a Stripe
integration does. Every call the Stripe adapter makes is made here through ``StripeClient``, and
what comes back must be the SDK's types, with no field its typed class does not declare. Waits
poll a condition with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import stripe
from aiohttp import web

from providers.webhook_signature import HEADER as NATIVE_HEADER
from providers.webhook_signature import verify
from sandbox import psp
from tests.support.polling import eventually
from tests.support.serving import bound_socket, serving

STRIPE_SECRET = "whsec_test_stripe_face"
NATIVE_SECRET = "test-native-webhook-secret"
API_KEY = "sk_test_sandbox_face_0001"
DEADLINE_SECONDS = 5.0
RETURN_URL = "http://127.0.0.1:8080/orders/ord_1"


class Receiver:
    """Stands in for the gateway's webhook endpoint: takes Stripe events as Stripe's SDK checks
    them, and native ones as the gateway does."""

    def __init__(self) -> None:
        self.events: list[stripe.Event] = []
        self.native: list[dict[str, Any]] = []
        self.attempts: Counter[str] = Counter()
        self.refused = 0
        self.fail_next = 0  # answer this many Stripe deliveries with 500 first

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if NATIVE_HEADER in request.headers:
            verify(NATIVE_SECRET, body, request.headers[NATIVE_HEADER])
            self.native.append(json.loads(body))
            return web.json_response({"received": True})
        try:
            event = stripe.Webhook.construct_event(
                body, request.headers.get("Stripe-Signature"), STRIPE_SECRET
            )
        except (stripe.SignatureVerificationError, ValueError):
            self.refused += 1
            return web.json_response({"error": "bad signature"}, status=400)
        self.attempts[event.id] += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "try later"}, status=500)
        self.events.append(event)
        return web.json_response({"received": True})

    def about(self, object_id: str, event_type: str | None = None) -> list[stripe.Event]:
        return [e for e in self.events if e.data.object.id == object_id and event_type in (None, e.type)]

    async def received(self, object_id: str, event_type: str) -> stripe.Event:
        """Wait for the event of ``event_type`` about ``object_id``; there must be one only."""

        async def probe() -> list[stripe.Event]:
            return self.about(object_id, event_type)

        [event] = await eventually(
            probe, timeout=DEADLINE_SECONDS, interval=0.02, what=f"{event_type} for {object_id}"
        )
        return event

    async def received_native(self) -> list[dict[str, Any]]:
        """Wait for native events (signed with ``PSP-Signature``); return those."""

        async def probe() -> list[dict[str, Any]]:
            return self.native

        return await eventually(probe, timeout=DEADLINE_SECONDS, interval=0.02, what="a native event")


class Face:
    """A running provider, the SDK client on its Stripe face, and a plain client for the rest."""

    def __init__(
        self, url: str, client: stripe.StripeClient, http: aiohttp.ClientSession, receiver: Receiver
    ):
        self.url = url
        self.client = client
        self.http = http
        self.receiver = receiver

    async def native(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, **kwargs) as response:
            return response.status, await response.json()

    async def pay(
        self, payment_method: str = "pm_card_ok", amount: int = 1250, **extra: Any
    ) -> stripe.PaymentIntent:
        order_id = f"ord_{uuid.uuid4().hex[:8]}"
        return await self.client.v1.payment_intents.create_async(
            params={
                "amount": amount,
                "currency": "usd",
                "confirm": True,
                "payment_method": payment_method,
                "payment_method_types": ["card"],
                "metadata": {"order_id": order_id, "payment_id": f"pay-{order_id}"},
                "description": f"Order {order_id}",
                **extra,
            },
            options={"idempotency_key": f"payment-{order_id}"},
        )

    async def pay_by_redirect(
        self, order_id: str | None = None, return_url: str | None = RETURN_URL
    ) -> stripe.PaymentIntent:
        order_id = order_id or f"ord_{uuid.uuid4().hex[:8]}"
        return await self.client.v1.payment_intents.create_async(
            params={
                "amount": 1250,
                "currency": "usd",
                "confirm": True,
                "payment_method_types": ["ideal"],
                "payment_method_data": {"type": "ideal"},
                "return_url": return_url,  # the SDK leaves a None out
                "metadata": {"order_id": order_id, "payment_id": f"pay-{order_id}"},
                "description": f"Order {order_id}",
            },
            options={"idempotency_key": f"payment-{order_id}"},
        )

    async def pay_natively(self, key: str) -> dict[str, Any]:
        """A succeeded payment made through the native face."""
        body = {
            "amount_cents": 900,
            "currency": "USD",
            "method": "token",
            "token": "pm_card_ok",
            "metadata": {"order_id": f"ord_{uuid.uuid4().hex[:8]}"},
        }
        status, payment = await self.native(
            "POST", "/v1/payments", json=body, headers={"Idempotency-Key": key}
        )
        assert status == 201, payment
        return payment

    async def events_at_provider(self, payment_id: str) -> list[dict[str, Any]]:
        status, body = await self.native("GET", f"/v1/events?payment_id={payment_id}")
        assert status == 200
        return body["data"]


def stripe_client(url: str, http_client: stripe.AIOHTTPClient, api_key: str = API_KEY) -> stripe.StripeClient:
    # As the Stripe adapter builds its client, pointed at the sandbox.
    return stripe.StripeClient(
        api_key, base_addresses={"api": f"{url}/stripe"}, http_client=http_client, max_network_retries=0
    )


@pytest_asyncio.fixture
async def face() -> AsyncIterator[Face]:
    receiver = Receiver()
    receiver_app = web.Application()
    receiver_app.router.add_post("/payments/webhook", receiver.webhook)
    receiver_sock, psp_sock = bound_socket(), bound_socket()
    url = f"http://127.0.0.1:{psp_sock.getsockname()[1]}"
    app = psp.create_app(
        webhook_url=f"http://127.0.0.1:{receiver_sock.getsockname()[1]}/payments/webhook",
        webhook_secret=NATIVE_SECRET,
        stripe_webhook_secret=STRIPE_SECRET,
        public_url=url,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )
    http_client = stripe.AIOHTTPClient(timeout=10)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(serving(receiver_app, receiver_sock))
        await stack.enter_async_context(serving(app, psp_sock))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        stack.push_async_callback(http_client.close_async)
        yield Face(url, stripe_client(url, http_client), http, receiver)


def assert_declared(obj: stripe.StripeObject, cls: type) -> None:
    """Every field the face returned is one the SDK's typed class declares."""
    assert isinstance(obj, cls)
    extra = set(obj.to_dict()) - set(cls.__annotations__)
    assert not extra, f"{cls.__name__} fields the SDK does not declare: {sorted(extra)}"


# -- token payments -----------------------------------------------------------------------------


async def test_a_test_card_payment_succeeds_with_a_signed_stripe_event(face: Face) -> None:
    intent = await face.pay("pm_card_ok", amount=1250)

    assert_declared(intent, stripe.PaymentIntent)
    assert intent.id.startswith("pi_") and intent.object == "payment_intent"
    assert (intent.status, intent.amount, intent.amount_received, intent.currency) == (
        "succeeded",
        1250,
        1250,
        "usd",
    )
    assert intent.latest_charge is not None and intent.latest_charge.startswith("ch_")
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    assert (intent.capture_method, intent.confirmation_method, intent.livemode) == (
        "automatic_async",
        "automatic",
        False,
    )
    assert intent.payment_method == "pm_card_ok" and intent.payment_method_types == ["card"]
    assert intent.metadata["order_id"].startswith("ord_") and intent.description.startswith("Order ")
    assert intent.last_response.request_id.startswith("req_")

    event = await face.receiver.received(intent.id, "payment_intent.succeeded")
    assert_declared(event, stripe.Event)
    assert_declared(event.data.object, stripe.PaymentIntent)
    assert event.data.object.status == "succeeded"
    assert event.data.object.metadata.to_dict() == intent.metadata.to_dict()
    assert (event.api_version, event.livemode, event.pending_webhooks) == (stripe.api_version, False, 1)
    assert event.request.id == intent.last_response.request_id
    assert event.request.idempotency_key == f"payment-{intent.metadata['order_id']}"
    # The provider's canonical list has it under the same id, delivered.
    [canonical] = await face.events_at_provider(intent.id)
    assert canonical["id"] == event.id and canonical["delivery"]["delivered"] is True
    assert face.receiver.refused == 0 and face.receiver.native == []


async def test_stripes_own_test_card_succeeds(face: Face) -> None:
    intent = await face.pay("pm_card_visa")
    assert intent.status == "succeeded"
    await face.receiver.received(intent.id, "payment_intent.succeeded")


@pytest.mark.parametrize("card", ["pm_card_declined", "pm_card_chargeDeclined"])
async def test_a_declined_card_is_a_card_error_carrying_the_payment_intent(face: Face, card: str) -> None:
    with pytest.raises(stripe.CardError) as raised:
        await face.pay(card)

    error = raised.value
    assert (error.http_status, error.code, error.user_message) == (
        402,
        "card_declined",
        "Your card was declined.",
    )
    assert error.error.decline_code == "generic_decline" and error.error.type == "card_error"
    assert error.request_id.startswith("req_")
    intent = error.error.payment_intent
    assert_declared(intent, stripe.PaymentIntent)
    assert intent.status == "requires_payment_method"
    assert (intent.last_payment_error.code, intent.last_payment_error.decline_code) == (
        "card_declined",
        "generic_decline",
    )
    assert intent.latest_charge is None

    event = await face.receiver.received(intent.id, "payment_intent.payment_failed")
    assert event.data.object.last_payment_error.code == "card_declined"
    fetched = await face.client.v1.payment_intents.retrieve_async(intent.id)
    assert fetched.status == "requires_payment_method"


async def test_a_card_that_never_answers_waits_until_the_checkout_page_decides(face: Face) -> None:
    silent = await face.pay("pm_card_no_response")
    assert silent.status == "requires_action"
    assert silent.next_action.type == "redirect_to_url"
    checkout_url = silent.next_action.redirect_to_url.url
    assert checkout_url == f"{face.url}/checkout/{silent.id}"
    # A later payment's event arriving shows deliveries flow past the silent one.
    later = await face.pay("pm_card_ok")
    await face.receiver.received(later.id, "payment_intent.succeeded")
    assert face.receiver.about(silent.id) == []
    assert (await face.client.v1.payment_intents.retrieve_async(silent.id)).status == "requires_action"

    status, _ = await face.native("POST", checkout_url.removeprefix(face.url) + "/approve")
    assert status == 200
    event = await face.receiver.received(silent.id, "payment_intent.succeeded")
    assert event.request.id is None  # the customer, not an API request, decided it


async def test_an_unknown_payment_method_is_resource_missing(face: Face) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await face.pay("pm_card_nope")
    error = raised.value
    assert (error.http_status, error.code, error.param) == (400, "resource_missing", "payment_method")
    assert error.user_message == "No such PaymentMethod: 'pm_card_nope'"


# -- idempotency --------------------------------------------------------------------------------


async def test_a_repeated_request_replays_the_first_response(face: Face) -> None:
    params = {
        "amount": 700,
        "currency": "usd",
        "confirm": True,
        "payment_method": "pm_card_ok",
        "metadata": {"order_id": "ord_replay"},
    }
    first = await face.client.v1.payment_intents.create_async(
        params=params, options={"idempotency_key": "k-replay"}
    )
    again = await face.client.v1.payment_intents.create_async(
        params=params, options={"idempotency_key": "k-replay"}
    )

    assert again.to_dict() == first.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.request_id == first.last_response.request_id
    status, listed = await face.native("GET", "/v1/payments?order_id=ord_replay")
    assert (status, [p["id"] for p in listed["data"]]) == (200, [first.id])
    await face.receiver.received(first.id, "payment_intent.succeeded")
    assert len(await face.events_at_provider(first.id)) == 1


async def test_a_replayed_decline_is_the_same_decline(face: Face) -> None:
    params = {"amount": 700, "currency": "usd", "confirm": True, "payment_method": "pm_card_declined"}
    declines = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as raised:
            await face.client.v1.payment_intents.create_async(
                params=params, options={"idempotency_key": "k-decline"}
            )
        declines.append(raised.value)
    assert declines[0].json_body == declines[1].json_body
    assert declines[1].headers["idempotent-replayed"] == "true"


async def test_a_key_reused_with_other_parameters_is_an_idempotency_error(face: Face) -> None:
    intent = await face.pay("pm_card_ok", amount=500)
    key = f"payment-{intent.metadata['order_id']}"
    with pytest.raises(stripe.IdempotencyError) as raised:
        await face.client.v1.payment_intents.create_async(
            params={"amount": 501, "currency": "usd", "confirm": True, "payment_method": "pm_card_ok"},
            options={"idempotency_key": key},
        )
    assert raised.value.http_status == 400
    assert raised.value.user_message.startswith(
        "Keys for idempotent requests can only be used with the same parameters they were first used with."
    )
    with pytest.raises(stripe.IdempotencyError):
        await face.client.v1.refunds.create_async(
            params={"payment_intent": intent.id}, options={"idempotency_key": key}
        )


async def test_keys_of_the_two_faces_do_not_meet(face: Face) -> None:
    native = await face.pay_natively("k-both")
    intent = await face.client.v1.payment_intents.create_async(
        params={"amount": 900, "currency": "usd", "confirm": True, "payment_method": "pm_card_ok"},
        options={"idempotency_key": "k-both"},
    )
    assert intent.id != native["id"] and intent.status == "succeeded"
    # The native payment reports through the native face, signed its own way.
    [native_event] = await face.receiver.received_native()
    assert native_event["data"]["payment_id"] == native["id"]


# -- redirect payments --------------------------------------------------------------------------


async def test_a_redirect_payment_approved_with_a_delayed_webhook(face: Face) -> None:
    intent = await face.pay_by_redirect("ord_redirect")

    assert_declared(intent, stripe.PaymentIntent)
    assert (intent.status, intent.payment_method_types) == ("requires_action", ["ideal"])
    assert intent.payment_method.startswith("pm_")
    redirect = intent.next_action.redirect_to_url
    assert (redirect.url, redirect.return_url) == (f"{face.url}/checkout/{intent.id}", RETURN_URL)

    started = time.monotonic()
    status, _ = await face.native("POST", f"/checkout/{intent.id}/approve?webhook_delay_s=0.5")
    assert status == 200
    fetched = await face.client.v1.payment_intents.retrieve_async(intent.id)
    assert (fetched.status, fetched.latest_charge) == ("succeeded", f"ch_{intent.id.removeprefix('pi_')}")
    assert face.receiver.about(intent.id) == []
    event = await face.receiver.received(intent.id, "payment_intent.succeeded")
    assert time.monotonic() - started >= 0.45
    assert_declared(event.data.object, stripe.PaymentIntent)
    assert event.data.object.metadata["order_id"] == "ord_redirect"
    # The native listing counts it with the rest of the order's payments.
    _, listed = await face.native("GET", "/v1/payments?order_id=ord_redirect")
    assert [(p["id"], p["status"], p["method"]) for p in listed["data"]] == [
        (intent.id, "succeeded", "redirect")
    ]


async def test_a_redirect_payment_declined_at_checkout(face: Face) -> None:
    intent = await face.pay_by_redirect()
    status, _ = await face.native("POST", f"/checkout/{intent.id}/decline")
    assert status == 200
    event = await face.receiver.received(intent.id, "payment_intent.payment_failed")
    assert event.data.object.status == "requires_payment_method"
    assert event.data.object.last_payment_error.code == "payment_intent_authentication_failure"
    status, body = await face.native("POST", f"/checkout/{intent.id}/approve")
    assert (status, body["error"]["code"]) == (409, "already_decided")


async def test_a_redirect_needs_a_return_url(face: Face) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await face.pay_by_redirect(return_url=None)
    assert (raised.value.http_status, raised.value.param) == (400, "return_url")
    _, listed = await face.native("GET", "/v1/payments")
    assert listed["data"] == []  # refused before anything was made


# -- confirming later ---------------------------------------------------------------------------


async def test_a_payment_intent_confirmed_after_it_was_created(face: Face) -> None:
    client = face.client.v1.payment_intents
    bare = await client.create_async(params={"amount": 800, "currency": "eur"})
    assert_declared(bare, stripe.PaymentIntent)
    assert (bare.status, bare.payment_method, bare.currency) == ("requires_payment_method", None, "eur")
    confirmed = await client.confirm_async(bare.id, params={"payment_method": "pm_card_visa"})
    assert (confirmed.status, confirmed.amount_received) == ("succeeded", 800)
    await face.receiver.received(bare.id, "payment_intent.succeeded")

    with_card = await client.create_async(
        params={"amount": 800, "currency": "usd", "payment_method": "pm_card_ok"}
    )
    assert with_card.status == "requires_confirmation"
    assert (await client.confirm_async(with_card.id)).status == "succeeded"

    redirect = await client.create_async(
        params={"amount": 800, "currency": "usd", "payment_method_types": ["ideal"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.confirm_async(redirect.id, params={"payment_method_data": {"type": "ideal"}})
    assert raised.value.param == "return_url"
    waiting = await client.confirm_async(
        redirect.id, params={"payment_method_data": {"type": "ideal"}, "return_url": RETURN_URL}
    )
    assert waiting.status == "requires_action"
    assert waiting.next_action.redirect_to_url.url == f"{face.url}/checkout/{redirect.id}"

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await client.confirm_async(bare.id, params={"payment_method": "pm_card_ok"})
    assert raised.value.code == "payment_intent_unexpected_state"
    assert raised.value.error.payment_intent.status == "succeeded"


# -- cancel -------------------------------------------------------------------------------------


async def test_cancel_a_waiting_payment_intent_then_again(face: Face) -> None:
    intent = await face.pay_by_redirect()
    canceled = await face.client.v1.payment_intents.cancel_async(intent.id)

    assert_declared(canceled, stripe.PaymentIntent)
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", None)
    assert isinstance(canceled.canceled_at, int) and canceled.next_action is None
    event = await face.receiver.received(intent.id, "payment_intent.canceled")
    assert event.data.object.status == "canceled"

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await face.client.v1.payment_intents.cancel_async(intent.id)
    assert (raised.value.code, raised.value.error.payment_intent.status) == (
        "payment_intent_unexpected_state",
        "canceled",
    )
    status, body = await face.native("POST", f"/checkout/{intent.id}/approve")
    assert (status, body["error"]["code"]) == (409, "payment_cancelled")


async def test_a_succeeded_payment_intent_cannot_be_canceled(face: Face) -> None:
    intent = await face.pay("pm_card_ok")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await face.client.v1.payment_intents.cancel_async(intent.id)
    error = raised.value
    assert (error.http_status, error.code) == (400, "payment_intent_unexpected_state")
    assert error.user_message.startswith(
        "You cannot cancel this PaymentIntent because it has a status of succeeded."
    )
    assert_declared(error.error.payment_intent, stripe.PaymentIntent)
    assert error.error.payment_intent.id == intent.id


async def test_a_declined_payment_intent_can_be_canceled(face: Face) -> None:
    with pytest.raises(stripe.CardError) as raised:
        await face.pay("pm_card_declined")
    intent = raised.value.error.payment_intent
    canceled = await face.client.v1.payment_intents.cancel_async(
        intent.id, params={"cancellation_reason": "abandoned"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")


# -- refunds ------------------------------------------------------------------------------------


async def test_refunds_in_parts_until_nothing_is_left(face: Face) -> None:
    intent = await face.pay("pm_card_ok", amount=1000)
    refunds = face.client.v1.refunds
    meta = {
        "order_id": intent.metadata["order_id"],
        "payment_id": intent.metadata["payment_id"],
        "refund_id": "r-1",
    }

    part = await refunds.create_async(
        params={"payment_intent": intent.id, "amount": 300, "metadata": meta},
        options={"idempotency_key": "refund-r-1"},
    )
    assert_declared(part, stripe.Refund)
    assert (part.object, part.amount, part.currency, part.status) == ("refund", 300, "usd", "succeeded")
    assert (part.payment_intent, part.charge, part.reason) == (intent.id, intent.latest_charge, None)
    assert part.metadata.to_dict() == meta
    event = await face.receiver.received(part.id, "refund.created")
    assert_declared(event.data.object, stripe.Refund)
    assert event.data.object.metadata["refund_id"] == "r-1"
    assert event.request.idempotency_key == "refund-r-1"

    fetched = await refunds.retrieve_async(part.id)
    assert_declared(fetched, stripe.Refund)
    assert fetched.to_dict() == part.to_dict()

    with pytest.raises(stripe.InvalidRequestError) as raised:
        await refunds.create_async(params={"payment_intent": intent.id, "amount": 701})
    assert (raised.value.code, raised.value.param) == ("amount_too_large", "amount")
    assert (
        raised.value.user_message
        == "Refund amount ($7.01) is greater than unrefunded amount on charge ($7.00)"
    )

    rest = await refunds.create_async(params={"payment_intent": intent.id})
    assert rest.amount == 700
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await refunds.create_async(params={"payment_intent": intent.id})
    assert raised.value.code == "charge_already_refunded"

    # The ledger's native bookkeeping counts them.
    _, payment = await face.native("GET", f"/v1/payments/{intent.id}")
    assert payment["amount_refunded_cents"] == 1000
    _, listed = await face.native("GET", f"/v1/refunds?payment_id={intent.id}")
    assert [r["id"] for r in listed["data"]] == [part.id, rest.id]


async def test_only_a_succeeded_payment_intent_is_refundable(face: Face) -> None:
    intent = await face.pay("pm_card_no_response")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await face.client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert raised.value.http_status == 400 and raised.value.param == "payment_intent"
    assert (
        raised.value.user_message
        == f"This PaymentIntent ({intent.id}) does not have a successful charge to refund."
    )


# -- missing objects, bad requests and keys -----------------------------------------------------


async def test_unknown_and_native_objects_are_resource_missing(face: Face) -> None:
    native = await face.pay_natively("k-native")
    _, native_refund = await face.native(
        "POST", "/v1/refunds", json={"payment_id": native["id"]}, headers={"Idempotency-Key": "k-native-r"}
    )
    for payment_id in ("pi_nope", native["id"]):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await face.client.v1.payment_intents.retrieve_async(payment_id)
        assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
        assert raised.value.user_message == f"No such payment_intent: '{payment_id}'"
    for refund_id in ("re_nope", native_refund["id"]):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            await face.client.v1.refunds.retrieve_async(refund_id)
        assert (raised.value.http_status, raised.value.code) == (404, "resource_missing")
        assert raised.value.user_message == f"No such refund: '{refund_id}'"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await face.client.v1.refunds.create_async(params={"payment_intent": native["id"]})
    assert (raised.value.code, raised.value.param) == ("resource_missing", "payment_intent")


@pytest.mark.parametrize(
    "params, code, param",
    [
        ({"currency": "usd"}, "parameter_missing", "amount"),
        ({"amount": "12.5", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 100, "currency": "usd", "colour": "red"}, "parameter_unknown", "colour"),
        (
            {"amount": 100, "currency": "usd", "payment_method_data": {"type": "ideal", "x": 1}},
            "parameter_unknown",
            "payment_method_data[x]",
        ),
    ],
)
async def test_bad_parameters_are_refused_as_stripe_does(
    face: Face, params: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        await face.client.v1.payment_intents.create_async(params=params)
    assert (raised.value.http_status, raised.value.code, raised.value.param) == (400, code, param)
    _, listed = await face.native("GET", "/v1/payments")
    assert listed["data"] == []


@pytest.mark.parametrize("api_key", ["sk_live_not_in_the_sandbox", "pk_test_publishable", "nonsense"])
async def test_a_wrong_key_is_an_authentication_error(face: Face, api_key: str) -> None:
    http_client = stripe.AIOHTTPClient(timeout=10)
    try:
        with pytest.raises(stripe.AuthenticationError) as raised:
            await stripe_client(face.url, http_client, api_key).v1.payment_intents.retrieve_async("pi_x")
    finally:
        await http_client.close_async()
    assert raised.value.http_status == 401
    assert raised.value.user_message.startswith("Invalid API Key provided: ")
    assert api_key not in raised.value.user_message
    assert raised.value.request_id.startswith("req_")


# -- webhook delivery ---------------------------------------------------------------------------


async def test_an_event_is_retried_after_the_receiver_fails(face: Face) -> None:
    face.receiver.fail_next = 1
    intent = await face.pay("pm_card_ok")

    event = await face.receiver.received(intent.id, "payment_intent.succeeded")
    assert face.receiver.attempts[event.id] == 2
    [canonical] = await face.events_at_provider(intent.id)
    assert canonical["id"] == event.id
    assert (canonical["delivery"]["attempts"], canonical["delivery"]["delivered"]) == (2, True)
