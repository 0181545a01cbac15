"""Stripe as the payment provider, through its official SDK (``stripe``), asynchronously.

Every payment is a PaymentIntent created and confirmed in one call, keyed by our attempt's
idempotency key, with our order and payment ids in its metadata (webhooks are matched by them):

- a token payment is confirmed with the customer's payment method; a declined card comes back
  as an error that carries the PaymentIntent, which is returned as a ``failed`` payment so the
  webhook settles it exactly as the sandbox's ``payment.failed`` does;
- a redirect payment is confirmed with a redirect-based payment method type
  (``STRIPE_REDIRECT_METHOD``) and a ``return_url``; Stripe answers ``requires_action`` with a
  ``redirect_to_url`` next action, whose URL is the checkout URL the customer is sent to. A
  PaymentIntent (rather than a Checkout Session) keeps the provider's payment id a ``pi_...``
  from the first call, so cancel, refunds and webhooks all name one object.

Stripe's errors become the provider client's outcomes: a request Stripe refuses for good
(invalid request, card error without a PaymentIntent) is ``ProviderRefused``; rate limits,
connection failures, 5xx and in-flight key conflicts (409) are ``ProviderError``, which fails
the step so dramatiq retries it with backoff; a key reused with other parameters is
``IdempotencyConflict``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import stripe
import structlog

from providers.payments.provider import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    IdempotencyConflict,
    ProviderError,
    ProviderPayment,
    ProviderPaymentDetails,
    ProviderRefund,
    ProviderRefundDetails,
    ProviderRefused,
    amount_or_none,
)

log = structlog.get_logger(__name__)

#: What a retrieval returns: a PaymentIntent or a Refund.
Retrieved = TypeVar("Retrieved", stripe.PaymentIntent, stripe.Refund)

#: Stripe's error code for an object it does not have (with HTTP 404 on retrieval).
RESOURCE_MISSING = "resource_missing"
#: Stripe's error code for an action the PaymentIntent's status does not allow (e.g. cancel).
UNEXPECTED_STATE = "payment_intent_unexpected_state"


def payment_status(intent: stripe.PaymentIntent) -> str:
    """Our word for a PaymentIntent's status: a declined attempt leaves Stripe's intent waiting
    for another payment method (``requires_payment_method`` with ``last_payment_error``); we
    never offer one, so for us it failed."""
    if intent.status == "succeeded":
        return SUCCEEDED
    if intent.status == "canceled":
        return CANCELLED
    if intent.status == "requires_payment_method" and getattr(intent, "last_payment_error", None):
        return FAILED
    return PENDING


def _checkout_url(intent: stripe.PaymentIntent) -> str | None:
    action = getattr(intent, "next_action", None)
    if action is None or action.type != "redirect_to_url" or action.redirect_to_url is None:
        return None
    return action.redirect_to_url.url


def _payment(intent: stripe.PaymentIntent) -> ProviderPayment:
    return ProviderPayment(id=intent.id, status=payment_status(intent), checkout_url=_checkout_url(intent))


def _metadata(value: stripe.StripeObject | None) -> dict[str, Any]:
    return value.to_dict() if value is not None else {}


def _refusal(error: stripe.StripeError) -> ProviderRefused:
    code = getattr(error, "code", None) or "refused"
    return ProviderRefused(error.http_status or 400, str(code), error.user_message or str(error))


@contextmanager
def _stripe_call(call: str) -> Iterator[None]:
    """Turn the SDK's exceptions raised inside into the provider client's (module docstring)."""
    try:
        yield
    except stripe.IdempotencyError as error:
        log.error("stripe.idempotency_conflict", call=call, error=error.user_message)
        raise IdempotencyConflict(f"{call}: {error.user_message}") from error
    except (stripe.InvalidRequestError, stripe.CardError) as error:
        raise _refusal(error) from error
    except stripe.StripeError as error:
        # Rate limits, connection failures, 5xx and a key in use (409) pass; a key that is wrong or
        # lacks a permission is an operator's fix, said loudly, and meanwhile the step retries too.
        if isinstance(error, (stripe.AuthenticationError, stripe.PermissionError)):
            log.error("stripe.key_refused", call=call, error=error.user_message)
        raise ProviderError(f"{call}: {type(error).__name__}: {error.user_message}") from error


class StripeProvider:
    """The provider client's calls (``providers.payments.provider.PaymentProvider``) on Stripe.

    ``api_base`` is where the SDK sends requests (Stripe, or the sandbox's Stripe face);
    ``return_url_base`` is where a customer comes back after a redirect payment (the order's
    page under it).
    """

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str,
        redirect_method: str,
        return_url_base: str,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._http = stripe.AIOHTTPClient(timeout=timeout_seconds)
        # Retries are the step's, with backoff and its own bound: the SDK makes one try per call.
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=self._http,
            max_network_retries=0,
        )
        self._redirect_method = redirect_method
        self._return_url_base = return_url_base.rstrip("/")

    async def close(self) -> None:
        """Release the connection pool."""
        await self._http.close_async()

    def _payment_params(
        self, amount_cents: int, currency: str, method: str, token: str | None, metadata: dict[str, str]
    ) -> dict[str, Any]:
        order_id = metadata.get("order_id", "")
        params: dict[str, Any] = {
            "amount": amount_cents,
            "currency": currency.lower(),
            "confirm": True,
            "metadata": metadata,
            "description": f"Order {order_id}",
        }
        if method == "redirect":
            params["payment_method_types"] = [self._redirect_method]
            params["payment_method_data"] = {"type": self._redirect_method}
            params["return_url"] = f"{self._return_url_base}/orders/{order_id}"
        else:
            # Cards only: no other method type could need a redirect the customer never sees.
            params["payment_method_types"] = ["card"]
            params["payment_method"] = token
        return params

    async def create_payment(
        self,
        *,
        idempotency_key: str,
        amount_cents: int,
        currency: str,
        method: str,
        token: str | None,
        metadata: dict[str, str],
    ) -> ProviderPayment:
        """Create and confirm a PaymentIntent (with the same key, Stripe answers as the first time)."""
        params = self._payment_params(amount_cents, currency, method, token, metadata)
        try:
            with _stripe_call("create_payment"):
                intent = await self._client.v1.payment_intents.create_async(
                    params=params,  # type: ignore[arg-type]  # built above from typed values
                    options={"idempotency_key": idempotency_key},
                )
        except ProviderRefused as refusal:
            declined = _declined_intent(refusal)
            if declined is None:
                raise
            return _payment(declined)
        return _payment(intent)

    async def cancel_payment(self, provider_payment_id: str) -> ProviderPayment:
        """Cancel a PaymentIntent not yet paid; cancelling a cancelled one again is fine."""
        try:
            with _stripe_call("cancel_payment"):
                intent = await self._client.v1.payment_intents.cancel_async(provider_payment_id)
        except ProviderRefused as refusal:
            current = _intent_of(refusal)
            if refusal.code != UNEXPECTED_STATE or current is None:
                raise
            if payment_status(current) == CANCELLED:
                return _payment(current)
            if payment_status(current) == SUCCEEDED:
                raise ProviderRefused(409, "already_succeeded", "the payment already succeeded") from refusal
            raise
        return _payment(intent)

    async def refund(
        self,
        *,
        idempotency_key: str,
        provider_payment_id: str,
        amount_cents: int,
        metadata: dict[str, str],
    ) -> ProviderRefund:
        """Refund ``amount_cents`` of a PaymentIntent (the same key never refunds twice)."""
        with _stripe_call("refund"):
            refund = await self._client.v1.refunds.create_async(
                params={"payment_intent": provider_payment_id, "amount": amount_cents, "metadata": metadata},
                options={"idempotency_key": idempotency_key},
            )
        return ProviderRefund(id=refund.id, status=str(refund.status))

    async def get_payment(self, provider_payment_id: str) -> ProviderPaymentDetails | None:
        """Stripe's own record of the PaymentIntent; None when Stripe has none."""
        intent = await _retrieved(
            "get_payment", self._client.v1.payment_intents.retrieve_async, provider_payment_id
        )
        if intent is None:
            return None
        return ProviderPaymentDetails(
            id=provider_payment_id,
            status=payment_status(intent),
            amount_cents=amount_or_none(intent.amount),
            currency=intent.currency,
            metadata=_metadata(intent.metadata),
            amount_refunded_cents=None,
        )

    async def get_refund(self, provider_refund_id: str) -> ProviderRefundDetails | None:
        """Stripe's own record of a refund; None when Stripe has none."""
        refund = await _retrieved("get_refund", self._client.v1.refunds.retrieve_async, provider_refund_id)
        if refund is None:
            return None
        paid = refund.payment_intent
        return ProviderRefundDetails(
            id=provider_refund_id,
            # Stripe may expand the id into the PaymentIntent itself.
            payment_id=paid if isinstance(paid, str) or paid is None else paid.id,
            status=str(refund.status or ""),
            amount_cents=amount_or_none(refund.amount),
            currency=refund.currency,
            metadata=_metadata(refund.metadata),
        )


async def _retrieved(
    call: str, retrieve: Callable[[str], Awaitable[Retrieved]], object_id: str
) -> Retrieved | None:
    """Stripe's object ``object_id`` read with ``retrieve``; None when Stripe has no such object."""
    try:
        with _stripe_call(call):
            found = await retrieve(object_id)
    except ProviderRefused as refusal:
        if refusal.code == RESOURCE_MISSING:
            return None
        raise
    if found.id != object_id:
        # An answer about some other object is a broken provider (or face); ask again later.
        raise ProviderError(f"{call}: the answer is not about the object asked for")
    return found


def _intent_of(refusal: ProviderRefused) -> stripe.PaymentIntent | None:
    """The PaymentIntent that Stripe puts in the errors of PaymentIntent calls, if any."""
    error = refusal.__cause__
    if not isinstance(error, stripe.StripeError) or error.error is None:
        return None
    return error.error.payment_intent


def _declined_intent(refusal: ProviderRefused) -> stripe.PaymentIntent | None:
    """The PaymentIntent of a declined card (a 402 card error), which failed; else None."""
    if refusal.status != 402:
        return None
    intent = _intent_of(refusal)
    return intent if intent is not None and payment_status(intent) == FAILED else None
