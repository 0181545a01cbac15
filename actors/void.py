"""void: tell the provider to give up a payment the order no longer wants.

If the customer paid in the meantime the provider refuses (``already_succeeded``); its success
webhook then reaches `settle`, which applies the late-payment policy. Nothing to do here.
"""

from __future__ import annotations

import structlog

from actors.preamble import lock_payment_to_act_on
from messaging.queues import VOID
from models.state import PaymentStatus
from providers.payments.provider import ProviderRefused
from workers.runtime import Runtime
from workers.steps import FOLLOW_UP_PRIORITY, step_actor

log = structlog.get_logger(__name__)


async def void_payment(runtime: Runtime, order_id: str, payment_id: str) -> str | None:
    """Cancel the provider payment of our cancelled ``payment_id``; returns the provider's answer."""
    async with runtime.uow() as uow:
        payment = await lock_payment_to_act_on(
            uow,
            order_id,
            payment_id,
            log=log,
            step="void",
            status=PaymentStatus.CANCELLED,
            ready=lambda payment: bool(payment.provider_payment_id),  # the provider has it
        )
        if payment is None:
            return None
        provider_payment_id = payment.provider_payment_id
        assert provider_payment_id is not None  # `ready` above: the provider has it
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
