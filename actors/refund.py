"""refund: ask the provider to refund a payment marked REFUND_PENDING.

The idempotency key is derived from our payment id, so however often this step runs the
provider makes at most one refund; the `refund.succeeded` webhook then marks it REFUNDED.
"""

from __future__ import annotations

import structlog

from actors.preamble import lock_payment_to_act_on
from messaging.queues import REFUND
from models.order_moves import set_payment_columns
from models.repository import find_payment
from models.state import PaymentStatus
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


def idempotency_key(payment_id: str) -> str:
    """The provider idempotency key of the (single, full) refund of one payment."""
    return f"refund-{payment_id}"


async def refund_payment(runtime: Runtime, order_id: str, payment_id: str) -> str | None:
    """Request the refund and record the provider's refund id; returns it (None if nothing to do)."""
    async with runtime.uow() as uow:
        payment = await lock_payment_to_act_on(
            uow,
            order_id,
            payment_id,
            log=log,
            step="refund",
            status=PaymentStatus.REFUND_PENDING,
            ready=lambda payment: not payment.provider_refund_id,  # not asked for yet
        )
        if payment is None:
            return None
        provider_payment_id = payment.provider_payment_id
        # A payment succeeds (and only a succeeded one is refunded) with the provider's id recorded:
        # `settle` writes it with the move when the webhook overtook `pay`.
        assert provider_payment_id is not None, "a payment to refund has the provider's id"
    refund = await runtime.psp.refund(
        idempotency_key=idempotency_key(payment_id), provider_payment_id=provider_payment_id
    )
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        payment = find_payment(order, payment_id=payment_id) if order else None
        if payment is None:
            # Archived in between (only a refunded payment may be): nothing is left to record.
            log.warning("refund.payment_gone", payment_id=payment_id, provider_refund_id=refund.id)
            return refund.id
        if payment.provider_refund_id is None:
            await set_payment_columns(uow, payment, provider_refund_id=refund.id)
        await uow.commit()
    log.info("refund.requested", payment_id=payment_id, provider_refund_id=refund.id)
    return refund.id


refund = step_actor(REFUND, refund_payment)
