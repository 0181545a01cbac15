"""Loading orders for a step: always under the order row's lock.

Every step that changes an order first takes ``SELECT ... FOR UPDATE`` on its row, so two steps
on one order (a payment result and an expiry, or one message delivered twice) run one after
the other and the second sees what the first did.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.order_record import OrderRecord, PaymentRecord
from models.tables import Order


async def lock_order(session: AsyncSession, order_id: str) -> Order | None:
    """The order with its lines, holds, payments and history, its row locked until commit."""
    return await session.scalar(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    )


def find_payment(
    order: OrderRecord, *, payment_id: str | None = None, provider_payment_id: str | None = None
) -> PaymentRecord | None:
    """The order's payment with every id given: our id, the provider's id, or both.

    When both are given, a payment matching only one of them is no match: a provider id naming
    one payment and our id naming another is a contradiction, not a choice. A provider id not
    recorded yet matches nothing (only the provider can say which payment it belongs to).
    """
    if not payment_id and not provider_payment_id:
        return None
    for payment in reversed(order.payments):
        if payment_id and payment.id != payment_id:
            continue
        if provider_payment_id and payment.provider_payment_id != provider_payment_id:
            continue
        return payment
    return None
