"""Payments as the API shows them (``GET /payments/{id}``).

A payment is seen by the owner of its order and by the operator; to anyone else it does not
exist (404), exactly like an order. Payments of archived orders are still found: the hot tables
are read first and the archive second, which cannot miss a payment being moved between the two
reads (an order moves hot -> archive, with its payments, in one transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gateway.http.auth import Caller
from gateway.http.problems import Problem
from gateway.payments.schemas import PaymentDetail
from models import documents
from models.clock import isoformat
from models.state import PaymentStatus
from models.tables import Order, Payment, Refund, orders_archive, payments_archive, refunds_archive, table_of

_refunds = table_of(Refund)

# Payment ids are 32 lower-case hex digits; anything longer cannot be one.
MAX_PAYMENT_ID_LENGTH = 32


async def refund_documents(
    connection: AsyncConnection | AsyncSession, payment_id: str, *, archived: bool = False
) -> list[documents.Refund]:
    """The payment's refunds, oldest first, from the hot table or, for an ``archived`` order's
    payment, the archive."""
    table = refunds_archive if archived else _refunds
    rows = await connection.execute(
        select(
            table.c.id,
            table.c.amount_cents,
            table.c.status,
            table.c.reason,
            table.c.return_id,
            table.c.created_at,
        )
        .where(table.c.payment_id == payment_id)
        .order_by(table.c.created_at, table.c.id)
    )
    return [
        documents.Refund(
            row.id, row.amount_cents, row.status, row.reason, row.return_id, _time(row.created_at)
        )
        for row in rows
    ]


def _time(value: Any) -> str:
    written = isoformat(value)
    assert written is not None  # a NOT NULL column
    return written


def payment_detail(payment: Any, refunds: list[documents.Refund]) -> PaymentDetail:
    """A payment (a ``Payment`` row or an order record's) as ``GET /payments/{id}`` shows it, with
    its ``refunds``: no token and no provider secret.

    ``refunded`` is true once the confirmed refunds add up to the amount (status REFUNDED).
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
        refunded_cents=payment.refunded_cents or 0,
        refunds=refunds,
        created_at=isoformat(payment.created_at),
        updated_at=isoformat(payment.updated_at),
    )


def payment_not_found(payment_id: str, caller: Caller) -> Problem:
    """The 404 for a payment that does not exist or that ``caller`` may not see (the same answer)."""
    where = "" if caller.is_admin else " among your orders' payments"
    return Problem(404, f"no payment {payment_id!r}{where}")


@dataclass(frozen=True)
class FoundPayment:
    """A payment and whether it was read from the archive."""

    payment: Payment
    archived: bool


async def find_payment(session: AsyncSession, payment_id: str, caller: Caller) -> FoundPayment:
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
        archived = None
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
    return FoundPayment(payment, archived=archived is not None)
