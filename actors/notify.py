"""notify: email the customer about an order event, once.

The ledger row (unique per order and event) is claimed before sending and marked SENT after,
so a redelivered message sends nothing more. A delivery that finds the row claimed by another
one still in time does not give up on it: the claimant may have died mid-send (a killed
worker), so the message comes back after a backoff and takes over once the claim has lapsed.
A mail server that is down makes the step fail and retry with backoff on its own queue, which
holds up nothing else; a permanent refusal, or running out of retries, is recorded as FAILED
and counted.

The step speaks SQLAlchemy Core on a connection of its own, no ORM session: no outbox message
comes out of it, so it needs no unit of work. A first delivery takes three statements in two
short transactions, the mail server's time between them: one read of the ledger row with the
order, its lines and its customer; the INSERT (or conditional UPDATE) that claims the row; the
UPDATE that marks it SENT. A redelivery after that takes the read alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

import structlog
from dramatiq import Retry
from prometheus_client import Counter
from sqlalchemy import and_, bindparam, insert, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from messaging.queues import NOTIFY
from models.clock import utcnow
from models.db import is_duplicate_key
from models.state import NotificationStatus
from models.tables import Account, Notification, Order, OrderLine, table_of
from providers.emails import compose
from providers.mailer import MailPermanentError, MailTemporaryError
from workers.runtime import Runtime
from workers.steps import FOLLOW_UP_PRIORITY, current_retries, step_actor

log = structlog.get_logger(__name__)

SENT_TOTAL = Counter("orders_notifications_sent_total", "Customer emails sent", ["event"])
FAILED_TOTAL = Counter("orders_notifications_failed_total", "Customer emails given up on", ["event"])

#: Retries before a notification is given up (backoff capped at a minute: about 15 minutes in all).
MAX_RETRIES = 15
#: How long one delivery may keep the ledger row before another may take over: above a send's
#: worst case (the mailer's budget, SEND_BUDGET_SECONDS), so two live deliveries never both send; short, so a
#: delivery that died mid-send delays its email by about a minute only.
CLAIM_SECONDS = 45
#: Times a delivery reads the ledger again after another one changed the row under it.
CLAIM_ROUNDS = 3

NOT_FOUND = "order or account not found"

# The statements, built once: SQLAlchemy Core on a plain connection (no ORM session, no identity
# map, no flush), each compiled once per process and then taken from the engine's cache.
_ledger = table_of(Notification)
_orders = table_of(Order)
_accounts = table_of(Account)
_lines = table_of(OrderLine)

#: Everything one delivery needs, in one statement: the order with its customer and lines, and
#: the ledger row if there is one. One row per line, in SKU order (the email lists them so); an
#: inner join, as MariaDB reads the lines in index order then, where an outer join would sort
#: them in a temporary table.
_ORDER_AND_LEDGER = (
    _ledger.c.id.label("ledger_id"),
    _ledger.c.status,
    _ledger.c.claimed_until,
    _orders.c.reason,
    _orders.c.total_cents,
    _orders.c.currency,
    _accounts.c.email,
    _accounts.c.name,
)
_READ = (
    select(*_ORDER_AND_LEDGER, _lines.c.quantity, _lines.c.sku)
    .select_from(_orders)
    .join(_lines, _lines.c.order_id == _orders.c.id)
    .outerjoin(_accounts, _accounts.c.id == _orders.c.account_id)
    .outerjoin(_ledger, and_(_ledger.c.order_id == _orders.c.id, _ledger.c.event == bindparam("event")))
    .where(_orders.c.id == bindparam("order_id"))
    .order_by(_lines.c.sku)
)
#: The same without lines, when _READ finds none: for an order without lines, if there is one.
_READ_ORDER = (
    select(*_ORDER_AND_LEDGER, null().label("quantity"), null().label("sku"))
    .select_from(_orders)
    .outerjoin(_accounts, _accounts.c.id == _orders.c.account_id)
    .outerjoin(_ledger, and_(_ledger.c.order_id == _orders.c.id, _ledger.c.event == bindparam("event")))
    .where(_orders.c.id == bindparam("order_id"))
)
#: The ledger row alone, when the order is gone (archived, say).
_READ_LEDGER = select(_ledger.c.id.label("ledger_id"), _ledger.c.status, _ledger.c.claimed_until).where(
    _ledger.c.order_id == bindparam("order_id"), _ledger.c.event == bindparam("event")
)

#: A new ledger row, claimed for sending (or FAILED when the order is gone). A delivery racing
#: this one for the same order and event gets a duplicate key error and reads their row instead.
_CREATE = insert(_ledger).values(
    order_id=bindparam("order_id"),
    event=bindparam("event"),
    recipient=bindparam("recipient"),
    status=bindparam("new_status"),
    claimed_until=bindparam("until"),
    attempts=bindparam("first_attempts"),
    last_error=bindparam("error"),
    created_at=bindparam("now"),
)

#: The row as read is still free to take: neither settled nor claimed by a delivery still in time.
#: Checked again by the UPDATE itself, under the row lock: of two deliveries taking it, the second
#: finds the first one's claim and changes nothing (rowcount 0).
_FREE = and_(
    _ledger.c.id == bindparam("ledger_id"),
    _ledger.c.status != NotificationStatus.SENT.value,
    _ledger.c.status != NotificationStatus.FAILED.value,
    or_(
        _ledger.c.status != NotificationStatus.SENDING.value,
        _ledger.c.claimed_until.is_(None),
        _ledger.c.claimed_until <= bindparam("now"),
    ),
)
_TAKE = (
    update(_ledger)
    .where(_FREE)
    .values(
        status=NotificationStatus.SENDING.value,
        claimed_until=bindparam("until"),
        attempts=_ledger.c.attempts + 1,
        recipient=bindparam("recipient"),
    )
)
_NOTHING_TO_SEND = (
    update(_ledger).where(_FREE).values(status=NotificationStatus.FAILED.value, last_error=NOT_FOUND)
)

#: The outcome of a send, on the row this delivery claimed.
_RECORD_SENT = (
    update(_ledger)
    .where(_ledger.c.id == bindparam("ledger_id"))
    .values(
        status=NotificationStatus.SENT.value,
        claimed_until=null(),
        last_error=null(),
        sent_at=bindparam("sent_at"),
    )
)
_RECORD = (
    update(_ledger)
    .where(_ledger.c.id == bindparam("ledger_id"))
    .values(status=bindparam("new_status"), claimed_until=null(), last_error=bindparam("error"))
)


class ClaimedElsewhere(Retry):
    """Another delivery holds the ledger row: come back when its claim lapses (it may have died
    before sending). dramatiq retries a :class:`~dramatiq.Retry` without logging it as an error."""

    def __init__(self, order_id: str, event_type: str, claimed_until: datetime, now: datetime):
        lapses_in_ms = int((claimed_until - now).total_seconds() * 1000)
        super().__init__(
            f"{order_id} {event_type} is being sent until {claimed_until}", delay=max(lapses_in_ms, 0) + 1000
        )


class _Claim(NamedTuple):
    """A ledger row this delivery holds for sending, and the email's values."""

    ledger_id: int
    order_id: str
    reason: str | None
    total_cents: int
    currency: str
    lines: list[tuple[int, str]]
    email: str
    name: str


def ledger_event(event_type: str, occurrence: str | None = None) -> str:
    """The ledger's name of one email: the event type, and which occurrence of a repeatable one."""
    return f"{event_type}:{occurrence}" if occurrence else event_type


async def _claim(runtime: Runtime, order_id: str, event_type: str) -> _Claim | None:
    """Take the ledger row for sending; returns what the email needs, or None when there is nothing to do.

    ``event_type`` is the ledger's name of the email (:func:`ledger_event`). A first delivery
    reads (one statement), inserts the row claimed (one more) and commits.
    """
    key = {"order_id": order_id, "event": event_type}
    async with runtime.engine.connect() as conn:
        for _ in range(CLAIM_ROUNDS):
            rows = (await conn.execute(_READ, key)).all() or (await conn.execute(_READ_ORDER, key)).all()
            # No rows: the order is gone (or never was); its ledger row still decides what happens.
            ledger = rows[0] if rows else (await conn.execute(_READ_LEDGER, key)).first()
            status, claimed_until = (ledger.status, ledger.claimed_until) if ledger else (None, None)
            now = utcnow()
            if status in (NotificationStatus.SENT, NotificationStatus.FAILED):
                log.info("notify.already_done", event_type=event_type, ledger_status=status)
                return None
            if status == NotificationStatus.SENDING and claimed_until and claimed_until > now:
                log.info("notify.claimed_elsewhere", event_type=event_type, claimed_until=claimed_until)
                raise ClaimedElsewhere(order_id, event_type, claimed_until, now)
            order = rows[0] if rows and rows[0].email is not None else None
            ledger_id = await _take(
                conn, ledger.ledger_id if ledger else None, key, now, order.email if order else None
            )
            if ledger_id is None:
                await conn.rollback()
                continue  # another delivery created or took the row first: read theirs
            await conn.commit()
            if order is None:
                return None
            return _Claim(
                ledger_id,
                order_id,
                order.reason,
                order.total_cents,
                order.currency,
                [(row.quantity, row.sku) for row in rows if row.sku is not None],
                order.email,
                order.name,
            )
    # The row kept changing under this delivery: come back for it rather than drop the email.
    raise Retry(f"{order_id} {event_type}: the ledger row kept changing", delay=1000)


async def _take(
    conn: AsyncConnection, ledger_id: int | None, key: dict[str, str], now: datetime, recipient: str | None
) -> int | None:
    """Claim the free ledger row (creating it if ``ledger_id`` is None) for sending to ``recipient``,
    or mark it FAILED when there is no one to send to. Returns the row's id, or None when another
    delivery created or took it first."""
    until = now + timedelta(seconds=CLAIM_SECONDS)
    if ledger_id is None:
        values: dict[str, Any]
        if recipient is None:
            values = {
                "new_status": NotificationStatus.FAILED.value,
                "until": None,
                "first_attempts": 0,
                "error": NOT_FOUND,
            }
        else:
            values = {
                "new_status": NotificationStatus.SENDING.value,
                "until": until,
                "first_attempts": 1,
                "error": None,
            }
        try:
            result = await conn.execute(_CREATE, {**key, **values, "recipient": recipient, "now": now})
        except IntegrityError as error:
            if not is_duplicate_key(error):
                raise
            return None
        primary_key = result.inserted_primary_key
        assert primary_key is not None  # None only for an insert of no row: this one inserts one
        return primary_key[0]
    if recipient is None:
        result = await conn.execute(_NOTHING_TO_SEND, {"ledger_id": ledger_id, "now": now})
    else:
        result = await conn.execute(
            _TAKE, {"ledger_id": ledger_id, "now": now, "until": until, "recipient": recipient}
        )
    return ledger_id if result.rowcount == 1 else None


async def _record(
    runtime: Runtime, ledger_id: int, status: NotificationStatus, error: str | None = None
) -> None:
    async with runtime.engine.begin() as conn:
        if status is NotificationStatus.SENT:
            await conn.execute(_RECORD_SENT, {"ledger_id": ledger_id, "sent_at": utcnow()})
        else:
            await conn.execute(_RECORD, {"ledger_id": ledger_id, "new_status": status.value, "error": error})


async def send_notification(
    runtime: Runtime, order_id: str, event_type: str, occurrence: str | None = None
) -> NotificationStatus | None:
    """Send the email for ``event_type`` unless the ledger says it went out; returns the ledger status.

    ``occurrence`` names one of several events of a type an order may have (a refund's id).
    """
    claim = await _claim(runtime, order_id, ledger_event(event_type, occurrence))
    if claim is None:
        return None
    message = compose(
        order_id=claim.order_id,
        reason=claim.reason,
        total_cents=claim.total_cents,
        currency=claim.currency,
        lines=claim.lines,
        email=claim.email,
        name=claim.name,
        event=event_type,
        sender=runtime.settings.mail_from,
        occurrence=occurrence,
    )
    try:
        # The process's mailer, whose connection stays open for the next email.
        await runtime.mailers.get(runtime.settings.smtp_url).send(message)
    except MailPermanentError as error:
        return await _give_up(runtime, claim.ledger_id, event_type, str(error))
    except MailTemporaryError as error:
        if current_retries() >= MAX_RETRIES:
            return await _give_up(runtime, claim.ledger_id, event_type, str(error))
        await _record(runtime, claim.ledger_id, NotificationStatus.PENDING, str(error)[:500])
        log.warning("notify.retrying", event_type=event_type, error=str(error), retries=current_retries())
        raise
    await _record(runtime, claim.ledger_id, NotificationStatus.SENT)
    SENT_TOTAL.labels(event_type).inc()
    log.info("notify.sent", event_type=event_type, recipient=claim.email)
    return NotificationStatus.SENT


async def _give_up(runtime: Runtime, ledger_id: int, event_type: str, error: str) -> NotificationStatus:
    await _record(runtime, ledger_id, NotificationStatus.FAILED, error[:500])
    FAILED_TOTAL.labels(event_type).inc()
    log.error("notify.failed", event_type=event_type, error=error)
    return NotificationStatus.FAILED


notify = step_actor(
    NOTIFY,
    send_notification,
    max_retries=MAX_RETRIES + 1,
    min_backoff=1000,
    max_backoff=60_000,
    priority=FOLLOW_UP_PRIORITY,
)
