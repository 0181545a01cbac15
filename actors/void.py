"""void: tell the provider to give up a payment the order no longer wants.

If the customer paid in the meantime the provider refuses (``already_succeeded``); its success
webhook then reaches `settle`, which applies the late-payment policy. Nothing to do here.
"""

from __future__ import annotations

import structlog

from models.repository import find_payment
from models.state import PaymentStatus
from workers.psp_client import ProviderRefused
from workers.queues import VOID
from workers.runtime import Runtime
from workers.steps import FOLLOW_UP_PRIORITY, step_actor

log = structlog.get_logger(__name__)


async def void_payment(runtime: Runtime, order_id: str, payment_id: str) -> str | None:
    """Cancel the provider payment of our cancelled ``payment_id``; returns the provider's answer."""
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        payment = find_payment(order, payment_id=payment_id) if order else None
        if payment is None or payment.status != PaymentStatus.CANCELLED or not payment.provider_payment_id:
            log.info(
                "void.not_applicable",
                payment_id=payment_id,
                payment_status=payment.status if payment else None,
            )
            return None
        provider_payment_id = payment.provider_payment_id
    try:
        voided = await runtime.psp.cancel_payment(provider_payment_id)
    except ProviderRefused as refusal:
        log.info(
            "payment.void_refused",
            payment_id=payment_id,
            provider_payment_id=provider_payment_id,
            code=refusal.code,
        )
        return refusal.code
    log.info("payment.voided", payment_id=payment_id, provider_payment_id=provider_payment_id)
    return voided.status


void = step_actor(VOID, void_payment, priority=FOLLOW_UP_PRIORITY)
