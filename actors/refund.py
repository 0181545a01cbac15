"""refund: ask the provider for one PENDING refund of a payment.

Each refund is its own provider call, its idempotency key derived from our refund's id: however
often this step runs for one refund, the provider makes it at most once. The provider's
`refund.succeeded` webhook then confirms it through `settle`. A refusal (the provider will not
refund that much, say, because money was given back outside the fleet) marks the refund FAILED:
it moved no money, and the payment goes back to where its other refunds leave it.

Messages from before partial refunds name only the payment: their refund is the payment's whole
refund, filed under the payment's own id, as the order flow files its refunds today.
"""

from __future__ import annotations

import structlog

from messaging.queues import REFUND
from models.refunds import find_refund, record_provider_refund, refund_refused
from models.repository import find_payment
from models.state import RefundStatus
from providers.payments.provider import ProviderRefused
from workers.runtime import Runtime
from workers.steps import step_actor

log = structlog.get_logger(__name__)


def idempotency_key(refund_id: str) -> str:
    """The provider idempotency key of one refund (the order flow's refund of a payment has the
    payment's id, so its key is the one whole refunds always had)."""
    return f"refund-{refund_id}"


async def refund_payment(
    runtime: Runtime, order_id: str, payment_id: str, refund_id: str | None = None
) -> str | None:
    """Request refund ``refund_id`` of the payment and record the provider's refund id; returns it
    (None when there is nothing to do)."""
    refund_id = refund_id or payment_id
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        payment = find_payment(order, payment_id=payment_id) if order else None
        refund = await find_refund(await uow.connection(), refund_id=refund_id)
        if payment is None or refund is None or refund.payment_id != payment_id:
            log.info("refund.not_applicable", payment_id=payment_id, refund_id=refund_id)
            return None
        if refund.status != RefundStatus.PENDING or refund.provider_refund_id is not None:
            log.info(
                "refund.already_done",
                refund_id=refund_id,
                refund_status=refund.status,
                provider_refund_id=refund.provider_refund_id,
            )
            return refund.provider_refund_id
        provider_payment_id = payment.provider_payment_id
        # Only a captured payment is refunded, and it was captured with the provider's id recorded
        # (`settle` writes it with the move when the webhook overtook `pay`).
        assert provider_payment_id is not None, "a payment to refund has the provider's id"
    metadata = {"order_id": order_id, "payment_id": payment_id, "refund_id": refund_id}
    try:
        answer = await runtime.psp.refund(
            idempotency_key=idempotency_key(refund_id),
            provider_payment_id=provider_payment_id,
            amount_cents=refund.amount_cents,
            metadata=metadata,
        )
    except ProviderRefused as refusal:
        await _record_refusal(runtime, order_id, payment_id, refund_id, refusal)
        return None
    async with runtime.uow() as uow:
        connection = await uow.connection()
        if not await record_provider_refund(connection, refund_id, answer.id) and (
            await find_refund(connection, refund_id=refund_id) is None
        ):
            # Deleted in between (only by hand: an order with a refund in flight is not archived).
            log.warning(
                "refund.payment_gone",
                payment_id=payment_id,
                refund_id=refund_id,
                provider_refund_id=answer.id,
            )
            return answer.id
        await uow.commit()
    log.info(
        "refund.requested",
        payment_id=payment_id,
        refund_id=refund_id,
        amount_cents=refund.amount_cents,
        provider_refund_id=answer.id,
    )
    return answer.id


async def _record_refusal(
    runtime: Runtime, order_id: str, payment_id: str, refund_id: str, refusal: ProviderRefused
) -> None:
    async with runtime.uow() as uow:
        order = await uow.lock_order(order_id)
        payment = find_payment(order, payment_id=payment_id) if order else None
        refund = await find_refund(await uow.connection(), refund_id=refund_id)
        if order is None or payment is None or refund is None:
            return
        await refund_refused(uow, order, payment, refund, refusal.code)
        await uow.commit()
    log.warning("refund.refused", payment_id=payment_id, refund_id=refund_id, code=refusal.code)


refund = step_actor(REFUND, refund_payment)
