"""Stripe's webhook events: verified with the endpoint's secret and turned into provider events."""

from __future__ import annotations

import json
import time

import pytest

from providers.payments.stripe_events import (
    HANDLED_EVENT_TYPES,
    InvalidStripeEvent,
    provider_event,
    verified_event,
)
from providers.webhook_signature import SignatureError, sign
from tests.support.stripe_events import (
    ORDER,
    PAYMENT,
    REFUND,
    SECRET,
    event_body,
    intent,
    refund,
    stripe_header,
)


def translated(event_type: str, obj: dict) -> dict | None:
    body = event_body(event_type, obj)
    return provider_event(verified_event(body, stripe_header(body), SECRET))


def test_a_succeeded_payment_intent_is_a_payment_succeeded_event_about_that_intent():
    assert translated("payment_intent.succeeded", intent()) == {
        "id": "evt_1",
        "type": "payment.succeeded",
        "created": 1_760_000_000,
        "data": {
            "payment_id": "pi_3Qx",
            "amount_cents": 4500,
            "currency": "usd",
            "metadata": {"order_id": ORDER, "payment_id": PAYMENT},
        },
        "stripe_type": "payment_intent.succeeded",
    }


def test_a_failed_payment_intent_is_a_payment_failed_event():
    event = translated("payment_intent.payment_failed", intent("requires_payment_method"))
    assert event is not None and event["type"] == "payment.failed"
    assert event["data"]["payment_id"] == "pi_3Qx"


def test_a_cancelled_payment_intent_is_recorded_as_cancelled_which_settle_does_not_act_on():
    event = translated("payment_intent.canceled", intent("canceled"))
    assert event is not None and event["type"] == "payment.cancelled"


@pytest.mark.parametrize("event_type", ["refund.created", "refund.updated"])
def test_a_succeeded_refund_is_a_refund_succeeded_event_naming_both_refunds(event_type):
    event = translated(event_type, refund())
    assert event is not None
    assert event["type"] == "refund.succeeded"
    assert event["data"] == {
        "payment_id": "pi_3Qx",
        "refund_id": "re_3Qx",
        "amount_cents": 1200,
        "currency": "usd",
        "metadata": {"order_id": ORDER, "payment_id": PAYMENT, "refund_id": REFUND},
    }


def test_a_refund_of_another_status_is_not_a_success():
    assert translated("refund.created", refund("pending"))["type"] == "refund.pending"  # type: ignore[index]
    assert translated("refund.failed", refund("failed"))["type"] == "refund.failed"  # type: ignore[index]


def test_a_refund_whose_payment_intent_is_expanded_still_names_it():
    expanded = {**refund(), "payment_intent": intent()}
    assert translated("refund.updated", expanded)["data"]["payment_id"] == "pi_3Qx"  # type: ignore[index]


@pytest.mark.parametrize("event_type", ["charge.refunded", "charge.succeeded", "customer.created"])
def test_events_the_fleet_does_not_act_on_translate_to_nothing(event_type):
    assert translated(event_type, {"id": "ch_1", "object": "charge"}) is None


def test_every_registered_type_is_translated():
    objects = {"payment_intent": intent(), "refund": refund()}
    for event_type in HANDLED_EVENT_TYPES:
        assert translated(event_type, objects[event_type.split(".")[0]]) is not None


def test_a_wrong_secret_is_refused():
    body = event_body("payment_intent.succeeded", intent())
    with pytest.raises(SignatureError):
        verified_event(body, stripe_header(body, secret="whsec_someone_else"), SECRET)


def test_a_stale_signature_is_refused():
    body = event_body("payment_intent.succeeded", intent())
    with pytest.raises(SignatureError):
        verified_event(body, stripe_header(body, timestamp=int(time.time()) - 3600), SECRET)


def test_a_changed_body_is_refused():
    body = event_body("payment_intent.succeeded", intent())
    header = stripe_header(body)
    with pytest.raises(SignatureError):
        verified_event(body.replace(b"4500", b"4501"), header, SECRET)


def test_the_sandbox_signature_is_not_stripes():
    body = event_body("payment_intent.succeeded", intent())
    with pytest.raises(SignatureError):
        verified_event(body, None, SECRET)
    # The sandbox's header value under Stripe's header name is still refused: another secret.
    with pytest.raises(SignatureError):
        verified_event(body, sign("dev-webhook-secret", body), SECRET)


def test_a_signed_body_that_is_not_json_is_an_invalid_event():
    body = b"not json"
    with pytest.raises(InvalidStripeEvent):
        verified_event(body, stripe_header(body), SECRET)


def test_a_signed_event_without_an_object_is_an_invalid_event():
    body = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}).encode()
    with pytest.raises(InvalidStripeEvent):
        provider_event(verified_event(body, stripe_header(body), SECRET))
