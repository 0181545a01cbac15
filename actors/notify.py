"""notify: email the customer about an order event, once.

The ledger row (unique per order and event) is claimed before sending and marked SENT after,
so a redelivered message sends nothing more. A delivery that finds the row claimed by another
one still in time does not give up on it: the claimant may have died mid-send (a killed
worker), so the message comes back after a backoff and takes over once the claim has lapsed.
A mail server that is down makes the step fail and retry with backoff on its own queue, which
holds up nothing else; a permanent refusal, or running out of retries, is recorded as FAILED
and counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from dramatiq import Retry
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models.clock import utcnow
from models.tables import Account, Notification, Order
from workers.emails import compose
from workers.mailer import Mailer, MailPermanentError, MailTemporaryError
from workers.queues import NOTIFY
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


class ClaimedElsewhere(Retry):
    """Another delivery holds the ledger row: come back when its claim lapses (it may have died
    before sending). dramatiq retries a :class:`~dramatiq.Retry` without logging it as an error."""

    def __init__(self, order_id: str, event_type: str, claimed_until: datetime, now: datetime):
        lapses_in_ms = int((claimed_until - now).total_seconds() * 1000)
        super().__init__(f"{order_id} {event_type} is being sent until {claimed_until}",
                         delay=max(lapses_in_ms, 0) + 1000)


async def _claim(runtime: Runtime, order_id: str, event_type: str):
    """Take the ledger row for sending; returns (order, account) or None when there is nothing to do."""
    for _ in range(2):
        async with runtime.uow() as uow:
            session = uow.session
            entry = await session.scalar(select(Notification).where(
                Notification.order_id == order_id, Notification.event == event_type).with_for_update())
            if entry is None:
                session.add(Notification(order_id=order_id, event=event_type, status="PENDING"))
                try:
                    await session.flush()
                except IntegrityError:
                    continue  # another delivery created it at the same moment: read theirs
                entry = await session.scalar(select(Notification).where(
                    Notification.order_id == order_id, Notification.event == event_type).with_for_update())
            now = utcnow()
            if entry.status in ("SENT", "FAILED"):
                log.info("notify.already_done", event_type=event_type, ledger_status=entry.status)
                return None
            if entry.status == "SENDING" and entry.claimed_until and entry.claimed_until > now:
                log.info("notify.claimed_elsewhere", event_type=event_type, claimed_until=entry.claimed_until)
                raise ClaimedElsewhere(order_id, event_type, entry.claimed_until, now)
            order = await session.get(Order, order_id)
            account = await session.get(Account, order.account_id) if order else None
            if order is None or account is None:
                entry.status, entry.last_error = "FAILED", "order or account not found"
                await uow.commit()
                return None
            entry.status, entry.claimed_until = "SENDING", now + timedelta(seconds=CLAIM_SECONDS)
            entry.attempts += 1
            entry.recipient = account.email
            await uow.commit()
            return order, account
    return None


async def _record(runtime: Runtime, order_id: str, event_type: str, status: str, error: str | None = None) -> None:
    async with runtime.uow() as uow:
        entry = await uow.session.scalar(select(Notification).where(
            Notification.order_id == order_id, Notification.event == event_type).with_for_update())
        entry.status, entry.claimed_until, entry.last_error = status, None, error
        if status == "SENT":
            entry.sent_at = utcnow()
        await uow.commit()


async def send_notification(runtime: Runtime, order_id: str, event_type: str) -> str | None:
    """Send the email for ``event_type`` unless the ledger says it went out; returns the ledger status."""
    claimed = await _claim(runtime, order_id, event_type)
    if claimed is None:
        return None
    order, account = claimed
    message = compose(order, account, event_type, runtime.settings.mail_from)
    try:
        await Mailer(runtime.settings.smtp_url).send(message)
    except MailPermanentError as error:
        return await _give_up(runtime, order_id, event_type, str(error))
    except MailTemporaryError as error:
        if current_retries() >= MAX_RETRIES:
            return await _give_up(runtime, order_id, event_type, str(error))
        await _record(runtime, order_id, event_type, "PENDING", str(error)[:500])
        log.warning("notify.retrying", event_type=event_type, error=str(error), retries=current_retries())
        raise
    await _record(runtime, order_id, event_type, "SENT")
    SENT_TOTAL.labels(event_type).inc()
    log.info("notify.sent", event_type=event_type, recipient=account.email)
    return "SENT"


async def _give_up(runtime: Runtime, order_id: str, event_type: str, error: str) -> str:
    await _record(runtime, order_id, event_type, "FAILED", error[:500])
    FAILED_TOTAL.labels(event_type).inc()
    log.error("notify.failed", event_type=event_type, error=error)
    return "FAILED"


notify = step_actor(NOTIFY, send_notification, max_retries=MAX_RETRIES + 1, min_backoff=1000,
                    max_backoff=60_000, priority=FOLLOW_UP_PRIORITY)
