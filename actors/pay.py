"""pay: create the order's payment at the provider and remember the provider's id.

The provider is called outside any database transaction (no row lock is held across the
network), with an idempotency key derived from our payment id: a retried or duplicated `pay`
finds the same provider payment instead of creating a second charge. The outcome arrives later
as a webhook, handled by `settle`.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from actors.preamble import NothingToDo, order_to_move
from messaging.queues import PAY
from models.order_flow import FollowUp, fail_payment
from models.order_moves import set_payment_columns
from models.order_record import read_order_record
from models.repository import find_payment
from models.state import OrderStatus, PaymentStatus
from providers.payments.provider import ProviderPayment, ProviderRefused
from workers.follow_up import enqueue_follow_up
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _PaymentRequest:
    payment_id: str
    amount_cents: int
    currency: str
    method: str
    token: str | None


def idempotency_key(payment_id: str) -> str:
    """The provider idempotency key of one payment attempt (our payment id is per attempt)."""
    return f"payment-{payment_id}"


async def _pending_request(runtime: Runtime, order_id: str) -> _PaymentRequest | None:
    # A read, not a lock: whatever it sees is checked again under the lock once the provider answered.
    async with runtime.engine.connect() as connection:
        order = order_to_move(
            await read_order_record(connection, order_id),
            log=log,
            step="pay",
            movable_from=(OrderStatus.AWAITING_PAYMENT,),
            skipped="not_awaiting_payment",
        )
        if isinstance(order, NothingToDo):
            return None
        payment = order.payment
        if payment is None:
            log.info("pay.not_awaiting_payment", status=order.status)
            return None
        if payment.provider_payment_id or payment.status != PaymentStatus.PENDING:
            log.info(
                "pay.already_requested",
                payment_id=payment.id,
                provider_payment_id=payment.provider_payment_id,
            )
            return None
        return _PaymentRequest(
            payment.id, payment.amount_cents, payment.currency, payment.method, payment.token
        )


async def request_payment(runtime: Runtime, order_id: str) -> str | None:
    """Ask the provider for the payment; returns the provider's payment id (None if nothing to do)."""
    request = await _pending_request(runtime, order_id)
    if request is None:
        return None
    try:
        created = await runtime.psp.create_payment(
            idempotency_key=idempotency_key(request.payment_id),
            amount_cents=request.amount_cents,
            currency=request.currency,
            method=request.method,
            token=request.token,
            metadata={"order_id": order_id, "payment_id": request.payment_id},
        )
    except ProviderRefused as refusal:
        await _record_refusal(runtime, order_id, request.payment_id, refusal)
        return None
    await _record_created(runtime, order_id, request.payment_id, created)
    return created.id


async def _record_created(runtime: Runtime, order_id: str, payment_id: str, created: ProviderPayment) -> None:
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        payment = find_payment(order, payment_id=payment_id) if order else None
        if order is None or payment is None:
            return
        if payment.provider_payment_id is None:
            await set_payment_columns(
                uow, payment, provider_payment_id=created.id, checkout_url=created.checkout_url
            )
            if payment.status == PaymentStatus.CANCELLED:
                # The order was cancelled, or this attempt replaced, while the provider was called.
                enqueue_follow_up(uow, order, FollowUp.VOID, payment)
        await uow.commit()
    log.info(
        "payment.requested",
        payment_id=payment_id,
        provider_payment_id=created.id,
        provider_status=created.status,
    )


async def _record_refusal(runtime: Runtime, order_id: str, payment_id: str, refusal: ProviderRefused) -> None:
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        payment = find_payment(order, payment_id=payment_id) if order else None
        if order is None or payment is None or order.status != OrderStatus.AWAITING_PAYMENT:
            return
        if payment is not order.payment or payment.status != PaymentStatus.PENDING:
            # An attempt replaced while the provider was asked: the order follows its current
            # attempt only, and the provider made nothing of this one that would need a void.
            log.info("pay.replaced_attempt_refused", payment_id=payment_id, refusal=refusal.code)
            return
        await fail_payment(uow, order, payment)
        await uow.commit()
    log.info("order.cancelled", reason="payment_failed", refusal=refusal.code)


pay = step_actor(PAY, request_payment)
