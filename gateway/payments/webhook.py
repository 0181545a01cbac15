"""``POST /payments/webhook``: the payment provider's signed events, recorded once each.

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
from models.webhook_agreement import REFUND_SUCCEEDED
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


@routes.post("/payments/webhook")
async def receive_event(request: web.Request) -> web.Response:
    """Verify, record and hand over one provider event; a repeat is acknowledged and ignored."""
    raw = await request.read()
    try:
        verify(request.app[SETTINGS].psp_webhook_secret, raw, request.headers.get(HEADER))
    except SignatureError as exc:
        log.warning("webhook.rejected", error=str(exc))
        raise Problem(INVALID_SIGNATURE, str(exc)) from None
    event, fields = _event_shape(raw)
    event_id = fields.id
    metadata = fields.data.metadata
    order_id = (metadata.order_id if metadata is not None else None) or None
    structlog.contextvars.bind_contextvars(event_id=event_id)
    if order_id:
        structlog.contextvars.bind_contextvars(order_id=order_id)

    payment_id = fields.data.payment_id
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
                    "received_at": utcnow(),
                    "processed_at": None,
                    "outcome": None,
                },
            )
        except IntegrityError as exc:
            if not is_duplicate_key(exc):
                raise
        else:
            # The provider's payment id lets settle ask the provider about a payment event before
            # it locks anything (a refund event is checked against the refund instead).
            asked_about = None if fields.type == REFUND_SUCCEEDED else payment_id
            uow.enqueue(SETTLE, event_id=event_id, order_id=order_id, provider_payment_id=asked_about)
            await uow.commit()
            duplicate = False
    log.info("webhook.received", event_type=fields.type, payment_id=payment_id, duplicate=duplicate)
    return json_response(schemas.WebhookAck(received=True, duplicate=duplicate))
