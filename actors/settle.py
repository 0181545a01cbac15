"""settle: apply a payment result reported by the provider's webhook.

payment.succeeded on an order awaiting payment -> PLACED with its holds COMMITTED; on an order
already cancelled -> the late-payment policy (reinstate if it timed out and stock can be held
again, else refund); payment.failed -> CANCELLED payment_failed with its holds RELEASED and the
stock back; refund.succeeded -> payment REFUNDED.
Each event is applied once (its row records the outcome); any event arriving when the order
has already moved on changes nothing and says so in the log.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import select

from models.clock import utcnow
from models.order_flow import FollowUp, fail_payment, late_payment, place, refund_settled
from models.repository import find_payment, lock_order
from models.state import OrderStatus, PaymentStatus
from models.tables import Order, Payment, WebhookEvent
from models.unit_of_work import UnitOfWork
from workers.follow_up import enqueue_follow_up
from workers.queues import SETTLE
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


async def _order_for(session, data: dict[str, Any], order_id: str | None) -> Order | None:
    metadata = data.get("metadata") or {}
    order_id = order_id or metadata.get("order_id")
    if not order_id and data.get("payment_id"):
        order_id = await session.scalar(
            select(Payment.order_id).where(Payment.provider_payment_id == data["payment_id"]))
    return await lock_order(session, order_id) if order_id else None


async def _succeeded(uow: UnitOfWork, order: Order, payment: Payment, policy: str) -> str:
    if order.status == OrderStatus.AWAITING_PAYMENT:
        await place(uow.session, order, payment)
        return "placed"
    if order.status in (OrderStatus.PLACED, OrderStatus.SHIPPED, OrderStatus.DELIVERED):
        return "already_placed"
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.CANCELLED):
        # Already settled one way or another (failed, or a late payment already handled).
        return f"ignored_in_{order.status.lower()}"
    if order.status == OrderStatus.PENDING:
        # Paid before its stock was even held: impossible through `pay`, so refuse to guess.
        return "ignored_in_pending"
    follow_up = await late_payment(uow.session, order, payment, policy)
    enqueue_follow_up(uow, order, follow_up)
    return "late_payment_reinstated" if follow_up is FollowUp.NOTHING else "late_payment_refunding"


async def _apply(uow: UnitOfWork, event_type: str, order: Order, payment: Payment, policy: str) -> str:
    if event_type == "payment.succeeded":
        return await _succeeded(uow, order, payment, policy)
    if event_type == "payment.failed":
        if order.status == OrderStatus.AWAITING_PAYMENT and payment.status == PaymentStatus.PENDING:
            await fail_payment(uow.session, order, payment)
            return "cancelled_payment_failed"
        return f"ignored_in_{order.status.lower()}"
    if event_type == "refund.succeeded":
        return "refunded" if refund_settled(order, payment) else "already_refunded"
    return "unhandled_type"


async def settle_payment(runtime: Runtime, event_id: str, order_id: str | None = None) -> str | None:
    """Apply webhook event ``event_id``; returns its recorded outcome (None if no such event)."""
    async with runtime.uow() as uow:
        event = await uow.session.get(WebhookEvent, event_id, with_for_update=True)
        if event is None:
            log.warning("settle.unknown_event")
            return None
        if event.processed_at is not None:
            log.info("settle.already_done", outcome=event.outcome)
            return event.outcome
        data = event.payload.get("data") or {}
        order = await _order_for(uow.session, data, order_id)
        payment = None
        if order is not None:
            payment = find_payment(order, payment_id=(data.get("metadata") or {}).get("payment_id"),
                                   provider_payment_id=data.get("payment_id"))
        if order is None or payment is None:
            outcome = "unknown_payment"
        else:
            structlog.contextvars.bind_contextvars(order_id=order.id)
            if payment.provider_payment_id is None:
                # The webhook can overtake `pay` recording the provider's id.
                payment.provider_payment_id = data.get("payment_id")
            if event.type == "refund.succeeded" and payment.provider_refund_id is None:
                payment.provider_refund_id = data.get("refund_id")
            outcome = await _apply(uow, event.type, order, payment, runtime.settings.late_payment_policy)
        event.processed_at = utcnow()
        event.outcome = outcome
        await uow.commit()
    log.info("payment.settled", event_type=event.type, outcome=outcome,
             provider_payment_id=data.get("payment_id"))
    return outcome


settle = step_actor(SETTLE, settle_payment)
