"""What the sandbox provider's faces share on its app: the books, the webhook sender, and how each
face words the webhooks of the payments made through it.

The native face (psp.py) and the Stripe face (stripe_face) are two APIs over one :class:`Ledger`.
A ledger event is rendered by the face of the payment it is about, whichever face's endpoint
caused it: a Stripe PaymentIntent approved at the native checkout page still sends a Stripe
event. Handlers of either app reach these through ``request.config_dict``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.psp_ledger import Ledger
from sandbox.psp_webhooks import Webhook, WebhookSender


@dataclass(frozen=True)
class Origin:
    """The API request that caused an event (Stripe's ``event.request``)."""

    request_id: str
    idempotency_key: str | None


# Renders a canonical ledger event as one face's webhook; the origin is None when no API request
# of that face caused it (the customer at the checkout page, or the other face's endpoint).
Render = Callable[[dict[str, Any], Origin | None], Webhook]

LEDGER = web.AppKey("psp_ledger", Ledger)
WEBHOOKS = web.AppKey("psp_webhooks", WebhookSender)
RENDERERS = web.AppKey("psp_renderers", dict[str, Render])


def send_events(
    request: web.Request,
    events: list[dict[str, Any]],
    delay: float = 0.0,
    origin: Origin | None = None,
) -> None:
    """Hand ``events`` to the webhook sender, each worded by the face its payment was made through."""
    config = request.config_dict
    ledger, renderers = config[LEDGER], config[RENDERERS]
    for event in events:
        face = ledger.payment(event["data"]["payment_id"]).face
        config[WEBHOOKS].send(renderers[face](event, origin), delay)
