"""``POST /payments/webhook``: the payment provider's signed events, recorded once each.

With ``PSP_PROVIDER=sandbox`` the events are the sandbox's, signed with ``PSP-Signature``; with
``PSP_PROVIDER=stripe`` they are Stripe's, signed with ``Stripe-Signature`` and turned into the
same provider events first (``providers.payments.stripe_events``), so everything after the
signature is one path. Each mode accepts only its own provider's signature.

The gateway only verifies, deduplicates and hands over: the event row and the ``settle``
message commit together, and the settle step does the rest (including events for payments it
does not know, which it acknowledges and logs). A valid event is always answered 200, so the
provider stops retrying it.
"""

from __future__ import annotations

from typing import cast

import structlog
from aiohttp import web
from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError

from gateway.http.bodies import convert
from gateway.http.db_errors import is_duplicate_key
from gateway.http.json_documents import ValidationError, check_depth, parse_json
from gateway.http.problems import INVALID_EVENT, INVALID_SIGNATURE, Problem
from gateway.http.responses import json_response
from gateway.keys import SETTINGS, UNITS_OF_WORK
from gateway.payments import schemas
from messaging.queues import SETTLE
from models.clock import utcnow
from models.tables import WebhookEvent
from models.webhook_agreement import HANDLED_TYPES, PAYMENT_FAILED, PAYMENT_SUCCEEDED, UNHANDLED_OUTCOME
from providers.webhook_signature import HEADER, SignatureError, verify

log = structlog.get_logger(__name__)

routes = web.RouteTableDef()

# The payload is stored as a JSON column, whose nesting the database bounds as well.
MAX_EVENT_DEPTH = 16
# Declarative classes type __table__ as a FromClause; this is a plain table.
_INSERT_EVENT = insert(cast(Table, WebhookEvent.__table__))


def _event_shape(raw: bytes) -> tuple[dict, schemas.WebhookEvent]:
    """The parsed event (as stored) and its checked fields; 400 problems when it is not an event."""
    try:
        event = parse_json(raw)
    except Problem as problem:
        raise Problem(INVALID_EVENT, problem.detail) from None
    try:
        check_depth(event, MAX_EVENT_DEPTH)
    except ValidationError as error:
        raise Problem(INVALID_EVENT, str(error)) from None
    # Providers add fields over time: unknown members are kept in the stored payload, not refused.
    return event, convert(event, schemas.WebhookEvent, kind=INVALID_EVENT)


def _sandbox_event(request: web.Request, raw: bytes) -> tuple[dict, schemas.WebhookEvent]:
    verify(request.app[SETTINGS].psp_webhook_secret, raw, request.headers.get(HEADER))
    return _event_shape(raw)


def _stripe_event(request: web.Request, raw: bytes) -> tuple[dict, schemas.WebhookEvent] | None:
    """The provider event a verified Stripe event stands for; None for a type we do not act on."""
    # Imported here: the SDK is a large package that a gateway on the sandbox never needs.
    from providers.payments import stripe_events

    secret = request.app[SETTINGS].stripe_webhook_secret
    try:
        event = stripe_events.verified_event(raw, request.headers.get(stripe_events.HEADER), secret)
        translated = stripe_events.provider_event(event)
    except stripe_events.InvalidStripeEvent as error:
        raise Problem(INVALID_EVENT, str(error)) from None
    if translated is None:
        log.info("webhook.ignored", stripe_type=event.type, event_id=event.id)
        return None
    return translated, convert(translated, schemas.WebhookEvent, kind=INVALID_EVENT)


@routes.post("/payments/webhook")
async def receive_event(request: web.Request) -> web.Response:
    """Verify, record and hand over one provider event; a repeat is acknowledged and ignored."""
    raw = await request.read()
    try:
        if request.app[SETTINGS].psp_provider == "stripe":
            shaped = _stripe_event(request, raw)
            if shaped is None:
                # Acknowledged, so Stripe stops sending it; nothing of ours depends on it.
                return json_response(schemas.WebhookAck(received=True, duplicate=False))
        else:
            shaped = _sandbox_event(request, raw)
    except SignatureError as exc:
        log.warning("webhook.rejected", error=str(exc))
        raise Problem(INVALID_SIGNATURE, str(exc)) from None
    event, fields = shaped
    event_id = fields.id
    metadata = fields.data.metadata
    order_id = (metadata.order_id if metadata is not None else None) or None
    structlog.contextvars.bind_contextvars(event_id=event_id)
    if order_id:
        structlog.contextvars.bind_contextvars(order_id=order_id)

    payment_id = fields.data.payment_id
    # A type settle does not act on (a cancel we asked for, a refund still pending) is recorded as
    # done at once: nothing would come of a settle step for it.
    acted_on = fields.type in HANDLED_TYPES
    received_at = utcnow()
    duplicate = True
    async with request.app[UNITS_OF_WORK]() as uow:
        connection = await uow.connection()
        try:
            # The event id is the primary key: a repeat fails here, and a concurrent delivery of the
            # same event waits for the first to commit, then fails.
            await connection.execute(
                _INSERT_EVENT,
                {
                    "id": event_id,
                    "type": fields.type,
                    "payload": event,
                    "received_at": received_at,
                    "processed_at": None if acted_on else received_at,
                    "outcome": None if acted_on else UNHANDLED_OUTCOME,
                },
            )
        except IntegrityError as exc:
            if not is_duplicate_key(exc):
                raise
        else:
            # The provider's payment id lets settle ask the provider about a payment event before
            # it locks anything (a refund event is checked against the refund instead).
            asked_about = payment_id if fields.type in (PAYMENT_SUCCEEDED, PAYMENT_FAILED) else None
            if acted_on:
                uow.enqueue(SETTLE, event_id=event_id, order_id=order_id, provider_payment_id=asked_about)
            await uow.commit()
            duplicate = False
    log.info("webhook.received", event_type=fields.type, payment_id=payment_id, duplicate=duplicate)
    return json_response(schemas.WebhookAck(received=True, duplicate=duplicate))
