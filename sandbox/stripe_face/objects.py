"""Stripe-shaped JSON built from the ledger's records: PaymentIntent, Refund and Event.

Only fields the SDK's typed resources declare (``stripe.PaymentIntent``, ``stripe.Refund``,
``stripe.Event``), with Stripe's values for what the sandbox has no notion of (null, false).
Built fresh from the books each time, so a webhook's object is a snapshot of the moment its
event was sent, as Stripe's are.
"""

from __future__ import annotations

from typing import Any

import stripe

from sandbox.psp_faces import Origin
from sandbox.psp_ledger import CANCELLED, FAILED, SUCCEEDED, Ledger, Payment, Refund
from sandbox.stripe_face.errors import CARD_ERROR, INVALID_REQUEST, doc_url
from sandbox.stripe_face.intents import Intent, StripeBooks

REQUIRES_PAYMENT_METHOD = "requires_payment_method"
REQUIRES_CONFIRMATION = "requires_confirmation"
REQUIRES_ACTION = "requires_action"

# What a PaymentIntent says after its attempt failed: its test card was declined, or the
# customer failed (declined) at the page they were redirected to.
CARD_DECLINED = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "doc_url": doc_url("card_declined"),
    "message": "Your card was declined.",
    "type": CARD_ERROR,
}
AUTHENTICATION_FAILED = {
    "code": "payment_intent_authentication_failure",
    "doc_url": doc_url("payment_intent_authentication_failure"),
    "message": (
        "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
        "or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
    ),
    "type": INVALID_REQUEST,
}


def charge_id(payment_id: str) -> str:
    """The id of a PaymentIntent's charge (Stripe's share the suffix, as ``pi_X`` / ``ch_X``)."""
    return "ch_" + payment_id.partition("_")[2]


def intent_status(payment: Payment, intent: Intent) -> str:
    """The PaymentIntent status of a ledger payment.

    A declined attempt leaves a PaymentIntent waiting for another payment method, as Stripe's
    do; a pending payment the payer has submitted waits for the customer (``requires_action``).
    """
    if payment.status == SUCCEEDED:
        return "succeeded"
    if payment.status == CANCELLED:
        return "canceled"
    if payment.status == FAILED:
        return REQUIRES_PAYMENT_METHOD
    if payment.method is not None:
        return REQUIRES_ACTION
    if intent.payment_method is not None:
        return REQUIRES_CONFIRMATION
    return REQUIRES_PAYMENT_METHOD


def payment_intent(payment: Payment, intent: Intent, checkout_url: str) -> dict[str, Any]:
    """The PaymentIntent ``payment`` is, as Stripe's API shows it.

    ``checkout_url`` is where a customer finishes it (the sandbox's checkout page), shown as the
    ``redirect_to_url`` next action while it waits for them.
    """
    status = intent_status(payment, intent)
    failure = None
    if payment.status == FAILED:
        failure = CARD_DECLINED if intent.card_declined else AUTHENTICATION_FAILED
    next_action = None
    if status == REQUIRES_ACTION:
        next_action = {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": checkout_url, "return_url": intent.return_url},
        }
    succeeded = payment.status == SUCCEEDED
    return {
        "id": payment.id,
        "object": "payment_intent",
        "amount": payment.amount_cents,
        "amount_capturable": 0,  # captured automatically: never anything left to capture
        "amount_received": payment.amount_cents if succeeded else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": payment.cancelled_at,
        "cancellation_reason": intent.cancellation_reason,
        "capture_method": "automatic_async",
        "client_secret": intent.client_secret,
        "confirmation_method": "automatic",
        "created": payment.created,
        "currency": payment.currency.lower(),
        "customer": None,
        "description": intent.description,
        "last_payment_error": dict(failure) if failure is not None else None,
        "latest_charge": charge_id(payment.id) if succeeded else None,
        "livemode": False,
        "metadata": dict(payment.metadata),
        "next_action": next_action,
        "on_behalf_of": None,
        # Stripe detaches a payment method whose attempt failed.
        "payment_method": None if payment.status == FAILED else intent.payment_method,
        "payment_method_types": list(intent.payment_method_types),
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def payment_intent_of(ledger: Ledger, books: StripeBooks, payment: Payment) -> dict[str, Any]:
    """The PaymentIntent of a Stripe-face ledger payment, from both books."""
    return payment_intent(payment, books.intents[payment.id], ledger.checkout_url(payment.id))


def refund(record: Refund) -> dict[str, Any]:
    """A ledger refund of a PaymentIntent as Stripe's Refund (sandbox refunds succeed at once)."""
    return {
        "id": record.id,
        "object": "refund",
        "amount": record.amount_cents,
        "balance_transaction": None,
        "charge": charge_id(record.payment_id),
        "created": record.created,
        "currency": record.currency.lower(),
        "description": None,
        "metadata": dict(record.metadata),
        "payment_intent": record.payment_id,
        "reason": None,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": record.status,
        "transfer_reversal": None,
    }


def event(
    event_id: str, event_type: str, created: int, data_object: dict[str, Any], origin: Origin | None
) -> dict[str, Any]:
    """A Stripe Event (a snapshot event: ``data.object`` is the object as it was then).

    ``origin`` is the API request that caused it; an outcome the customer gave at the checkout
    page has none, like a Stripe event no API request caused.
    """
    return {
        "id": event_id,
        "object": "event",
        "api_version": stripe.api_version,
        "created": created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {
            "id": origin.request_id if origin else None,
            "idempotency_key": origin.idempotency_key if origin else None,
        },
        "type": event_type,
    }
