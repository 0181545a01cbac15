"""The Stripe face's own books: what a PaymentIntent holds beyond the ledger's payment, and the
responses saved under idempotency keys.

Amount, currency, metadata, status and refunds live in the shared ledger (one truth for both
faces); this keeps only what Stripe's objects show and the native API has no word for. Plain
in-memory state, no I/O, like the ledger.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from sandbox.stripe_face import errors


@dataclass
class Intent:
    """A PaymentIntent's own fields; the ledger payment with the same id holds the rest."""

    id: str
    client_secret: str
    payment_method_types: list[str]
    description: str | None = None
    # The payment method as given (a test card such as pm_card_visa), or a pm_ id made from
    # payment_method_data; None until one is given.
    payment_method: str | None = None
    # The payment_method_data type (ideal, ...) when the payment method sends the customer away.
    redirect_type: str | None = None
    return_url: str | None = None
    # Declined by its test card (a card_error) rather than by the customer at the checkout page.
    card_declined: bool = False
    cancellation_reason: str | None = None

    @classmethod
    def new(cls, payment_id: str, payment_method_types: list[str], description: str | None) -> Intent:
        """A fresh PaymentIntent for the ledger payment ``payment_id``, with its client secret."""
        return cls(
            id=payment_id,
            client_secret=f"{payment_id}_secret_{secrets.token_hex(12)}",
            payment_method_types=payment_method_types,
            description=description,
        )


@dataclass(frozen=True)
class SavedResponse:
    """The first response given for an idempotency key, replayed as it was."""

    path: str
    fingerprint: str
    status: int
    body: dict[str, Any]
    request_id: str


@dataclass
class StripeBooks:
    """All the Stripe face keeps beside the ledger."""

    intents: dict[str, Intent] = field(default_factory=dict)
    _responses: dict[str, SavedResponse] = field(default_factory=dict)

    def replay(self, key: str, path: str, params: dict[str, Any]) -> SavedResponse | None:
        """The response first given for ``key``, or None for a new key.

        Raises the 400 ``idempotency_error`` when ``key`` was first used on another endpoint or
        with other parameters: Stripe refuses rather than guesses which request was meant.
        """
        saved = self._responses.get(key)
        if saved is None:
            return None
        if saved.path != path or saved.fingerprint != _fingerprint(params):
            raise errors.idempotency_reused(key, saved.path, path)
        return saved

    def save(
        self, key: str, path: str, params: dict[str, Any], status: int, body: dict[str, Any], request_id: str
    ) -> None:
        """Keep the response given for ``key`` (a decline or a refusal as much as a success)."""
        self._responses[key] = SavedResponse(path, _fingerprint(params), status, body, request_id)


def _fingerprint(params: dict[str, Any]) -> str:
    # Decoded parameters, so that the order they came in does not matter.
    return json.dumps(params, sort_keys=True, separators=(",", ":"))
