"""``POST /payments/webhook``: the payment provider's signed events, recorded once each.

The gateway only verifies, deduplicates and hands over: the event row and the ``settle``
message commit together, and the settle step does the rest (including events for payments it
does not know, which it acknowledges and logs). A valid event is always answered 200, so the
provider stops retrying it.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from gateway.http.db_errors import is_duplicate_key
from gateway.http.problems import INVALID_EVENT, INVALID_SIGNATURE, Problem
from gateway.http.responses import json_response
from gateway.http.validation import (
    ValidationError,
    check_depth,
    integer,
    obj,
    parse_json,
    string,
    validate,
)
from gateway.keys import SETTINGS, UNITS_OF_WORK
from models.clock import utcnow
from models.tables import WebhookEvent
from workers.queues import SETTLE
from workers.webhook_signature import HEADER, SignatureError, verify

log = structlog.get_logger(__name__)

routes = web.RouteTableDef()

# Providers add fields over time; unknown members are kept in the stored payload, not refused.
EVENT = obj(
    required={
        "id": string(max_length=128),
        "type": string(max_length=64),
        "created": integer(minimum=0),
        "data": obj(
            required={"payment_id": string(max_length=64)},
            optional={
                "amount_cents": integer(minimum=0),
                "currency": string(max_length=16),
                "metadata": obj(
                    # Our order and payment ids are 32 hex digits; anything longer is not ours.
                    optional={"order_id": string(max_length=32), "payment_id": string(max_length=32)},
                    extra="ignore",
                ),
            },
            extra="ignore",
        ),
    },
    extra="ignore",
)
# The payload is stored as a JSON column, whose nesting the database bounds as well.
MAX_EVENT_DEPTH = 16
_INSERT_EVENT = insert(WebhookEvent.__table__)


def _event_shape(raw: bytes) -> tuple[dict, dict]:
    """The parsed event (as stored) and its checked fields; 400 problems when it is not an event."""
    try:
        event = parse_json(raw)
    except Problem as problem:
        raise Problem(INVALID_EVENT, problem.detail) from None
    try:
        check_depth(event, MAX_EVENT_DEPTH)
    except ValidationError as error:
        raise Problem(INVALID_EVENT, str(error)) from None
    return event, validate(EVENT, event, kind=INVALID_EVENT)


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
    event_id = fields["id"]
    order_id = (fields["data"].get("metadata") or {}).get("order_id") or None
    structlog.contextvars.bind_contextvars(event_id=event_id)
    if order_id:
        structlog.contextvars.bind_contextvars(order_id=order_id)

    payment_id = fields["data"]["payment_id"]
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
                    "type": fields["type"],
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
            # The provider's payment id lets settle ask the provider before it locks anything.
            uow.enqueue(SETTLE, event_id=event_id, order_id=order_id, provider_payment_id=payment_id)
            await uow.commit()
            duplicate = False
    log.info("webhook.received", event_type=fields["type"], payment_id=payment_id, duplicate=duplicate)
    return json_response({"received": True, "duplicate": duplicate})
