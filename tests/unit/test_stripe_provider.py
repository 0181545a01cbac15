"""The Stripe adapter's translations: PaymentIntent statuses and the SDK's errors."""

from __future__ import annotations

import pytest
import stripe

from providers.payments.provider import IdempotencyConflict, ProviderError, ProviderRefused
from providers.payments.stripe_provider import StripeProvider, _stripe_call, payment_status


def intent(status: str, **fields) -> stripe.PaymentIntent:
    return stripe.PaymentIntent.construct_from({"id": "pi_1", "status": status, **fields}, "sk_test_x")


@pytest.mark.parametrize(
    ("status", "fields", "ours"),
    [
        ("succeeded", {}, "succeeded"),
        ("canceled", {}, "cancelled"),
        ("requires_payment_method", {"last_payment_error": {"code": "card_declined"}}, "failed"),
        ("requires_payment_method", {"last_payment_error": None}, "pending"),
        ("requires_action", {}, "pending"),
        ("processing", {}, "pending"),
        ("requires_confirmation", {}, "pending"),
    ],
)
def test_a_payment_intents_status_in_the_provider_clients_words(status, fields, ours):
    assert payment_status(intent(status, **fields)) == ours


def raising(error: Exception):
    with _stripe_call("test"):
        raise error


def body(**error) -> dict:
    return {"error": error}


@pytest.mark.parametrize(
    "error",
    [
        stripe.RateLimitError("slow down", None, 429, body(type="invalid_request_error")),
        stripe.APIConnectionError("connection reset"),
        stripe.APIError("oops", None, 500, body(type="api_error")),
        # Another request with the same key is still running: try again later.
        stripe.APIError("in use", None, 409, body(type="idempotency_error", code="idempotency_key_in_use")),
        stripe.AuthenticationError("Invalid API Key provided", None, 401, body(type="invalid_request_error")),
        stripe.PermissionError("not allowed", None, 403, body(type="invalid_request_error")),
    ],
)
def test_errors_that_may_pass_are_retried_by_the_step(error):
    with pytest.raises(ProviderError):
        raising(error)


def test_a_key_reused_with_other_parameters_is_an_idempotency_conflict():
    error = stripe.IdempotencyError(
        "Keys for idempotent requests can only be used with the same parameters", None, 400
    )
    with pytest.raises(IdempotencyConflict, match="same parameters"):
        raising(error)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            stripe.InvalidRequestError("too much", "amount", "amount_too_large", None, 400),
            400,
            "amount_too_large",
        ),
        (
            stripe.InvalidRequestError("No such payment_intent", "intent", "resource_missing", None, 404),
            404,
            "resource_missing",
        ),
        (stripe.CardError("Your card was declined.", "", "card_declined", None, 402), 402, "card_declined"),
    ],
)
def test_requests_refused_for_good_are_refusals_with_stripes_code(error, status, code):
    with pytest.raises(ProviderRefused) as refused:
        raising(error)
    assert (refused.value.status, refused.value.code) == (status, code)


def provider() -> StripeProvider:
    return StripeProvider(
        api_key="sk_test_x",
        api_base="http://127.0.0.1:9/stripe",
        redirect_method="ideal",
        return_url_base="http://shop",
    )


def test_a_token_payment_is_a_card_payment_confirmed_with_the_token():
    params = provider()._payment_params(
        1250, "USD", "token", "pm_card_visa", {"order_id": "o1", "payment_id": "p1"}
    )
    assert params == {
        "amount": 1250,
        "currency": "usd",
        "confirm": True,
        "metadata": {"order_id": "o1", "payment_id": "p1"},
        "description": "Order o1",
        "payment_method_types": ["card"],
        "payment_method": "pm_card_visa",
    }


def test_a_redirect_payment_is_confirmed_with_the_redirect_method_and_returns_to_the_order():
    params = provider()._payment_params(1250, "EUR", "redirect", None, {"order_id": "o1", "payment_id": "p1"})
    assert params["payment_method_types"] == ["ideal"]
    assert params["payment_method_data"] == {"type": "ideal"}
    assert params["return_url"] == "http://shop/orders/o1"
    assert params["currency"] == "eur" and "payment_method" not in params
