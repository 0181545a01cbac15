"""Payments as the API shows them (``GET /payments/{id}``).

A payment is seen by the owner of its order and by the operator; to anyone else it does not
exist (404), exactly like an order. Payments of archived orders are still found: the hot tables
are read first and the archive second, which cannot miss a payment being moved between the two
reads (an order moves hot -> archive, with its payments, in one transaction).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.http.auth import Caller
from gateway.http.problems import Problem
from gateway.payments.schemas import PaymentDetail
from models.clock import isoformat
from models.state import PaymentStatus
from models.tables import Order, Payment, orders_archive, payments_archive

# Payment ids are 32 lower-case hex digits; anything longer cannot be one.
MAX_PAYMENT_ID_LENGTH = 32


def payment_detail(payment: Payment) -> PaymentDetail:
    """A payment as ``GET /payments/{id}`` shows it: no token and no provider secret.

    ``refunded`` is true once the provider confirmed the refund (status REFUNDED).
    """
    return PaymentDetail(
        id=payment.id,
        order_id=payment.order_id,
        status=payment.status,
        method=payment.method,
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        checkout_url=payment.checkout_url,
        provider_payment_id=payment.provider_payment_id,
        refunded=payment.status == PaymentStatus.REFUNDED,
        created_at=isoformat(payment.created_at),
        updated_at=isoformat(payment.updated_at),
    )


def payment_not_found(payment_id: str, caller: Caller) -> Problem:
    """The 404 for a payment that does not exist or that ``caller`` may not see (the same answer)."""
    where = "" if caller.is_admin else " among your orders' payments"
    return Problem(404, f"no payment {payment_id!r}{where}")


async def find_payment(session: AsyncSession, payment_id: str, caller: Caller) -> Payment:
    """The payment ``caller`` may see, from the hot tables or the archive; 404 otherwise."""
    if not (len(payment_id) <= MAX_PAYMENT_ID_LENGTH and payment_id.isascii() and payment_id.isprintable()):
        raise payment_not_found(payment_id, caller)
    row = (
        await session.execute(
            select(Payment, Order.account_id)
            .join(Order, Order.id == Payment.order_id)
            .where(Payment.id == payment_id)
        )
    ).first()
    if row is not None:
        payment, owner = row
    else:
        archived = (
            (
                await session.execute(
                    select(payments_archive, orders_archive.c.account_id.label("owner_id"))
                    .join(orders_archive, orders_archive.c.id == payments_archive.c.order_id)
                    .where(payments_archive.c.id == payment_id)
                )
            )
            .mappings()
            .first()
        )
        if archived is None:
            raise payment_not_found(payment_id, caller)
        fields = dict(archived)
        owner = fields.pop("owner_id")
        payment = Payment(_status=fields.pop("status"), **fields)  # detached: read, never changed
    if not caller.may_see(owner):
        raise payment_not_found(payment_id, caller)
    return payment
