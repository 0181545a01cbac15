"""Stripe's error responses: ``{"error": {type, code, message, param, ...}}`` with a 4xx status.

The SDK picks its exception from the status and ``type`` (``_api_requestor.specific_v1_api_error``):
400/404 are ``InvalidRequestError`` (or ``IdempotencyError`` for ``type: idempotency_error``),
401 ``AuthenticationError``, 402 ``CardError``. Like Stripe, fields without a value are left out
(the SDK's ``ErrorObject`` fills them with None).
"""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = "invalid_request_error"
CARD_ERROR = "card_error"
IDEMPOTENCY_ERROR = "idempotency_error"
API_ERROR = "api_error"

CANCELABLE = "requires_payment_method, requires_capture, requires_confirmation, requires_action, processing"


class StripeError(Exception):
    """A request the Stripe face refuses; the response is :meth:`body` with :attr:`status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        **more: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"message": message, "type": error_type}
        if code is not None:
            self.error["code"] = code
            self.error["doc_url"] = doc_url(code)
        if param is not None:
            self.error["param"] = param
        self.error.update(more)

    def body(self) -> dict[str, Any]:
        """The JSON body Stripe answers with."""
        return {"error": self.error}


def doc_url(code: str) -> str:
    """Where Stripe documents an error code."""
    return f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}"


def invalid(message: str, *, code: str | None = None, param: str | None = None) -> StripeError:
    """400 ``invalid_request_error``."""
    return StripeError(400, message, code=code, param=param)


def missing(param: str) -> StripeError:
    """400 ``parameter_missing``: a required parameter was not sent."""
    return invalid(f"Missing required param: {param}.", code="parameter_missing", param=param)


def unknown(param: str) -> StripeError:
    """400 ``parameter_unknown``: a parameter this endpoint does not take."""
    return invalid(f"Received unknown parameter: {param}", code="parameter_unknown", param=param)


def no_such(kind: str, object_id: str, param: str, status: int = 404) -> StripeError:
    """``resource_missing``: 404 for an id in the URL, 400 for one passed as a parameter."""
    return StripeError(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def unexpected_state(message: str, payment_intent: dict[str, Any]) -> StripeError:
    """400 ``payment_intent_unexpected_state``, carrying the PaymentIntent as it is."""
    return StripeError(400, message, code="payment_intent_unexpected_state", payment_intent=payment_intent)


def cannot_cancel(payment_intent: dict[str, Any]) -> StripeError:
    """Cancelling a PaymentIntent that succeeded or was already canceled."""
    return unexpected_state(
        f"You cannot cancel this PaymentIntent because it has a status of {payment_intent['status']}. "
        f"Only a PaymentIntent with one of the following statuses may be canceled: {CANCELABLE}.",
        payment_intent,
    )


def card_declined(payment_intent: dict[str, Any]) -> StripeError:
    """402 ``card_error``: the PaymentIntent's ``last_payment_error`` (its card was declined; it
    awaits another payment method), with the PaymentIntent itself."""
    failure = dict(payment_intent["last_payment_error"])
    message, error_type, code = failure.pop("message"), failure.pop("type"), failure.pop("code")
    failure.pop("doc_url", None)
    return StripeError(
        402, message, error_type=error_type, code=code, **failure, payment_intent=payment_intent
    )


def idempotency_reused(key: str, first_path: str, path: str) -> StripeError:
    """400 ``idempotency_error``: the key was first used for another request."""
    if first_path != path:
        message = (
            "Keys for idempotent requests can only be used for the same endpoint they were first "
            f"used for ('{first_path}' vs '{path}'). Try using a key other than '{key}' if you "
            "meant to execute a different request."
        )
    else:
        message = (
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request."
        )
    return StripeError(400, message, error_type=IDEMPOTENCY_ERROR)


def authentication(message: str) -> StripeError:
    """401: no API key, or not a test secret key."""
    return StripeError(401, message)
