"""The Stripe face's JSON objects, built from ledger records and read back by the SDK's types."""

from __future__ import annotations

from typing import Any

import stripe

from sandbox.psp_faces import Origin
from sandbox.psp_ledger import STRIPE, Ledger, Payment
from sandbox.stripe_face import errors, objects
from sandbox.stripe_face.intents import Intent

CHECKOUT = "http://psp.test/checkout/"


def declared(cls: type) -> set[str]:
    """The fields a typed SDK resource declares (OBJECT_NAME is the class's own constant)."""
    return set(cls.__annotations__) - {"OBJECT_NAME"}


def opened(ledger: Ledger, **intent_fields: Any) -> tuple[Payment, Intent]:
    payment = ledger.open_payment(
        amount_cents=1250, currency="USD", metadata={"order_id": "o1"}, face=STRIPE, prefix="pi"
    )
    intent = Intent.new(payment.id, ["card"], "Order o1")
    for name, value in intent_fields.items():
        setattr(intent, name, value)
    return payment, intent


def as_intent(ledger: Ledger, payment: Payment, intent: Intent) -> dict[str, Any]:
    return objects.payment_intent(payment, intent, ledger.checkout_url(payment.id))


def test_a_fresh_payment_intent() -> None:
    ledger = Ledger(public_url="http://psp.test")
    payment, intent = opened(ledger)
    body = as_intent(ledger, payment, intent)

    assert set(body) <= declared(stripe.PaymentIntent)
    assert body["id"].startswith("pi_") and body["object"] == "payment_intent"
    assert body["client_secret"].startswith(body["id"] + "_secret_")
    assert (body["amount"], body["amount_received"], body["currency"]) == (1250, 0, "usd")
    assert body["status"] == "requires_payment_method"
    assert (body["next_action"], body["last_payment_error"], body["latest_charge"]) == (None, None, None)
    assert (body["capture_method"], body["confirmation_method"]) == ("automatic_async", "automatic")
    assert body["metadata"] == {"order_id": "o1"} and body["livemode"] is False
    typed = stripe.PaymentIntent.construct_from(body, "sk_test_x")
    assert typed.status == "requires_payment_method" and typed.metadata["order_id"] == "o1"


def test_statuses_through_a_payment_life() -> None:
    ledger = Ledger(public_url="http://psp.test")
    payment, intent = opened(ledger, payment_method="pm_card_visa")
    assert as_intent(ledger, payment, intent)["status"] == "requires_confirmation"

    ledger.submit(payment.id, method="token", token="pm_card_no_response")
    pending = as_intent(ledger, payment, intent)
    assert pending["status"] == "requires_action"
    assert pending["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": CHECKOUT + payment.id, "return_url": None},
    }
    assert set(pending["next_action"]) <= declared(stripe.PaymentIntent.NextAction)

    ledger.approve(payment.id)
    done = as_intent(ledger, payment, intent)
    assert (done["status"], done["amount_received"], done["next_action"]) == ("succeeded", 1250, None)
    assert done["latest_charge"] == "ch_" + payment.id.removeprefix("pi_")


def test_a_declined_card_leaves_a_card_error() -> None:
    ledger = Ledger(public_url="http://psp.test")
    payment, intent = opened(ledger, payment_method="pm_card_declined", card_declined=True)
    ledger.submit(payment.id, method="token", token="pm_card_declined")
    body = as_intent(ledger, payment, intent)

    assert body["status"] == "requires_payment_method"
    assert body["payment_method"] is None  # detached, as Stripe does
    failure = body["last_payment_error"]
    assert set(failure) <= declared(stripe.PaymentIntent.LastPaymentError)
    assert (failure["type"], failure["code"], failure["decline_code"]) == (
        "card_error",
        "card_declined",
        "generic_decline",
    )
    # The 402 error is that failure, with the PaymentIntent.
    error = errors.card_declined(body)
    assert error.status == 402
    assert error.error == {**failure, "payment_intent": body}
    assert set(error.error) <= declared(stripe.ErrorObject)


def test_a_redirect_declined_at_checkout_is_an_authentication_failure() -> None:
    ledger = Ledger(public_url="http://psp.test")
    payment, intent = opened(
        ledger, payment_method="pm_x", redirect_type="ideal", return_url="http://shop/o1"
    )
    ledger.submit(payment.id, method="redirect", token=None)
    assert (
        as_intent(ledger, payment, intent)["next_action"]["redirect_to_url"]["return_url"] == "http://shop/o1"
    )
    ledger.decline(payment.id)
    failure = as_intent(ledger, payment, intent)["last_payment_error"]
    assert failure["code"] == "payment_intent_authentication_failure"


def test_a_canceled_payment_intent() -> None:
    ledger = Ledger(public_url="http://psp.test")
    payment, intent = opened(ledger)
    _, events = ledger.cancel(payment.id)
    body = as_intent(ledger, payment, intent)
    assert body["status"] == "canceled"
    assert isinstance(body["canceled_at"], int) and body["cancellation_reason"] is None
    assert [e["type"] for e in events] == ["payment.cancelled"]


def test_refund_object() -> None:
    ledger = Ledger(public_url="http://psp.test")
    payment, _ = opened(ledger)
    ledger.submit(payment.id, method="token", token="pm_card_ok")
    record, _ = ledger.create_refund(
        key=None, fingerprint=None, payment_id=payment.id, amount_cents=300, metadata={"refund_id": "r1"}
    )
    body = objects.refund(record)

    assert set(body) <= declared(stripe.Refund)
    assert (body["object"], body["amount"], body["currency"], body["status"]) == (
        "refund",
        300,
        "usd",
        "succeeded",
    )
    assert (body["payment_intent"], body["charge"]) == (payment.id, objects.charge_id(payment.id))
    assert body["metadata"] == {"refund_id": "r1"} and body["reason"] is None
    assert stripe.Refund.construct_from(body, "sk_test_x").amount == 300


def test_event_object() -> None:
    data_object = {"id": "re_1", "object": "refund", "amount": 1}
    body = objects.event("evt_1", "refund.created", 1700000000, data_object, Origin("req_1", "refund-1"))

    assert set(body) <= declared(stripe.Event)
    assert body["api_version"] == stripe.api_version
    assert body["request"] == {"id": "req_1", "idempotency_key": "refund-1"}
    assert (body["livemode"], body["pending_webhooks"]) == (False, 1)
    event = stripe.Event.construct_from(body, "sk_test_x")
    assert isinstance(event.data.object, stripe.Refund)

    unprompted = objects.event("evt_2", "payment_intent.succeeded", 1, {"object": "payment_intent"}, None)
    assert unprompted["request"] == {"id": None, "idempotency_key": None}


def test_error_bodies() -> None:
    missing = errors.missing("amount").body()["error"]
    assert missing == {
        "message": "Missing required param: amount.",
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "doc_url": "https://docs.stripe.com/error-codes/parameter-missing",
        "param": "amount",
    }
    reused = errors.idempotency_reused("k1", "/v1/refunds", "/v1/refunds").error
    assert reused["type"] == "idempotency_error" and "'k1'" in reused["message"]
    elsewhere = errors.idempotency_reused("k1", "/v1/refunds", "/v1/payment_intents").error
    assert "('/v1/refunds' vs '/v1/payment_intents')" in elsewhere["message"]
