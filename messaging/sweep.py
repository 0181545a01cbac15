"""The backstop sweep: finds work a lost message left undone and enqueues its step again.

Delayed `expire` messages release holds on time; this catches the rare hold whose message was
lost (broker restart, purged queue) and orders stuck between steps. Every step is idempotent,
so enqueueing one that is merely slow does no harm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messaging.queues import EXPIRE, NOTIFY, PAY, REFUND, RESERVE, Route
from models.clock import utcnow
from models.state import HoldState, OrderStatus, PaymentStatus, RefundStatus
from models.tables import Notification, Order, Payment, Refund, ReservedStock
from models.unit_of_work import Publisher, UnitOfWork

log = structlog.get_logger(__name__)

REQUEUED = Counter("orders_sweep_requeued_total", "Steps the backstop sweep enqueued again", ["case"])

#: A hold this far past its expiry has clearly missed its `expire` message.
EXPIRY_GRACE_SECONDS = 30
#: An order this long in a state that a step should have left is stuck.
STUCK_AFTER_SECONDS = 120
BATCH = 500


@dataclass
class SweepReport:
    """How many orders each case re-enqueued."""

    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def _overdue_holds(session: AsyncSession, now) -> list[str]:
    cutoff = now - timedelta(seconds=EXPIRY_GRACE_SECONDS)
    return list(
        (
            await session.scalars(
                select(ReservedStock.order_id)
                .join(Order, Order.id == ReservedStock.order_id)
                .where(
                    ReservedStock.state == HoldState.HELD,
                    ReservedStock.expires_at < cutoff,
                    Order._status == OrderStatus.AWAITING_PAYMENT,
                )
                .distinct()
                .limit(BATCH)
            )
        ).all()
    )


async def _stuck_pending(session: AsyncSession, now) -> list[str]:
    cutoff = now - timedelta(seconds=STUCK_AFTER_SECONDS)
    return list(
        (
            await session.scalars(
                select(Order.id)
                .where(Order._status == OrderStatus.PENDING, Order.updated_at < cutoff)
                .limit(BATCH)
            )
        ).all()
    )


async def _unrequested_payments(session: AsyncSession, now) -> list[str]:
    # An order has at most one PENDING attempt, its current one (replacing an attempt cancels it),
    # and `pay` asks only for that one; an attempt added later starts its own wait.
    cutoff = now - timedelta(seconds=STUCK_AFTER_SECONDS)
    return list(
        (
            await session.scalars(
                select(Order.id)
                .join(Payment, Payment.order_id == Order.id)
                .where(
                    Order._status == OrderStatus.AWAITING_PAYMENT,
                    Order.updated_at < cutoff,
                    Payment._status == PaymentStatus.PENDING,
                    Payment.provider_payment_id.is_(None),
                    Payment.created_at < cutoff,
                )
                .limit(BATCH)
            )
        ).all()
    )


async def _unrequested_refunds(session: AsyncSession, now) -> list[tuple[str, str, str]]:
    # Each refund is its own row and its own provider call (a payment may have several, and an
    # order several refunded attempts): one never sent to the provider has no provider id.
    cutoff = now - timedelta(seconds=STUCK_AFTER_SECONDS)
    return list(
        (
            await session.execute(
                select(Refund.order_id, Refund.payment_id, Refund.id)
                .where(
                    Refund.status == RefundStatus.PENDING,
                    Refund.provider_refund_id.is_(None),
                    Refund.updated_at < cutoff,
                )
                .limit(BATCH)
            )
        ).all()
    )


def _notify_message(order_id: str, ledger_event: str) -> dict[str, str]:
    """The notify message of a ledger row: its event type and, for a repeatable event, which one."""
    event_type, _, occurrence = ledger_event.partition(":")
    message = {"order_id": order_id, "event_type": event_type}
    if occurrence:
        message["occurrence"] = occurrence
    return message


async def _abandoned_emails(session: AsyncSession, now) -> list[tuple[str, str]]:
    # A claim that lapsed long ago: its delivery died mid-send and its retry never came back.
    cutoff = now - timedelta(seconds=STUCK_AFTER_SECONDS)
    return list(
        (
            await session.execute(
                select(Notification.order_id, Notification.event)
                .where(Notification.status == "SENDING", Notification.claimed_until < cutoff)
                .limit(BATCH)
            )
        ).all()
    )


async def sweep(sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher) -> SweepReport:
    """Enqueue again every step that a due hold or a stuck order is waiting for."""
    report = SweepReport()
    now = utcnow()
    async with UnitOfWork(sessionmaker, publisher) as uow:
        session = uow.session
        cases: list[tuple[str, Route, list[dict[str, Any]]]] = [
            ("hold_overdue", EXPIRE, [{"order_id": o} for o in await _overdue_holds(session, now)]),
            ("pending_stuck", RESERVE, [{"order_id": o} for o in await _stuck_pending(session, now)]),
            (
                "payment_unrequested",
                PAY,
                [{"order_id": o} for o in await _unrequested_payments(session, now)],
            ),
            (
                "refund_unrequested",
                REFUND,
                [
                    {"order_id": o, "payment_id": p, "refund_id": r}
                    for o, p, r in await _unrequested_refunds(session, now)
                ],
            ),
            (
                "email_abandoned",
                NOTIFY,
                [_notify_message(o, e) for o, e in await _abandoned_emails(session, now)],
            ),
        ]
        for case, route, messages in cases:
            for kwargs in messages:
                uow.enqueue(route, **kwargs)
                log.warning("sweep.requeued", case=case, actor=route.actor_name, **kwargs)
            report.counts[case] = len(messages)
            REQUEUED.labels(case).inc(len(messages))
        await uow.commit()
    if report.total:
        log.info("sweep.done", **report.counts)
    return report
