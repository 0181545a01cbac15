"""Refunds of a captured payment, whole or in parts, each its own provider call with its own key.

Every refund is a row of ``refunds``: PENDING when asked for, then SUCCEEDED when the provider
confirms it (its webhook, through `settle`) or FAILED when the provider refuses it. What is left
to refund is what was captured minus the refunds confirmed *and* in flight, computed under the
order's row lock: two requests at the same moment take turns on that lock, and the second sees
the first one's refund, so together they can never ask for more than was captured.

The payment's status follows its refunds (:func:`models.state.payment_status_after_refunds`):
REFUND_PENDING while one is in flight, PARTIALLY_REFUNDED or REFUNDED once none is, and its
``refunded_cents`` adds up the confirmed ones.

Every function takes an order its caller locked in the same unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update

from models.clock import utcnow
from models.events import REFUNDED_EVENT
from models.order_moves import add_note, move_payment, set_payment_columns
from models.order_record import OrderRecord, PaymentRecord
from models.return_documents import load_returns
from models.state import (
    CAPTURED,
    DomainError,
    OrderStatus,
    PaymentStatus,
    RefundStatus,
    ReturnStatus,
    payment_status_after_refunds,
)
from models.tables import Refund, Return, new_id, table_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from models.unit_of_work import UnitOfWork

_refunds = table_of(Refund)
_returns = table_of(Return)


class RefundRefused(DomainError):
    """A refund that cannot be made: ``code`` says why (``not_captured``, ``nothing_left``,
    ``too_large``), ``left_cents`` what could still be refunded."""

    def __init__(self, code: str, message: str, left_cents: int = 0):
        self.code, self.left_cents = code, left_cents
        super().__init__(message)


@dataclass(slots=True)
class RefundRecord:
    """One refund as the steps read it under the order's lock."""

    id: str
    order_id: str
    payment_id: str
    amount_cents: int
    currency: str
    status: str
    reason: str | None
    return_id: str | None
    provider_refund_id: str | None
    created_at: datetime


_COLUMNS = (
    _refunds.c.id,
    _refunds.c.order_id,
    _refunds.c.payment_id,
    _refunds.c.amount_cents,
    _refunds.c.currency,
    _refunds.c.status,
    _refunds.c.reason,
    _refunds.c.return_id,
    _refunds.c.provider_refund_id,
    _refunds.c.created_at,
)
_OF_PAYMENT = (
    select(*_COLUMNS)
    .where(_refunds.c.payment_id == bindparam("payment_id"))
    .order_by(_refunds.c.created_at, _refunds.c.id)
)
_ONE = select(*_COLUMNS).where(_refunds.c.id == bindparam("refund_id"))
_BY_PROVIDER_ID = select(*_COLUMNS).where(_refunds.c.provider_refund_id == bindparam("provider_refund_id"))
_TAKEN = select(func.coalesce(func.sum(_refunds.c.amount_cents), 0)).where(
    _refunds.c.payment_id == bindparam("payment_id"),
    _refunds.c.status.in_([RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value]),
)
_IN_FLIGHT = select(func.count()).where(
    _refunds.c.payment_id == bindparam("payment_id"), _refunds.c.status == RefundStatus.PENDING.value
)
#: Conditional, so that of two deliveries settling one refund only the first changes anything.
_SETTLE = (
    update(_refunds)
    .where(_refunds.c.id == bindparam("refund_id"), _refunds.c.status == RefundStatus.PENDING.value)
    .values(status=bindparam("status"), updated_at=bindparam("now"))
)
_SET_PROVIDER_ID = (
    update(_refunds)
    .where(_refunds.c.id == bindparam("refund_id"), _refunds.c.provider_refund_id.is_(None))
    .values(provider_refund_id=bindparam("provider_refund_id"), updated_at=bindparam("now"))
)
_RETURN_REFUNDED = (
    update(_returns)
    .where(_returns.c.id == bindparam("return_id"), _returns.c.status == ReturnStatus.RECEIVED.value)
    .values(status=ReturnStatus.REFUNDED.value, updated_at=bindparam("now"))
)


def _record(row: Any) -> RefundRecord:
    return RefundRecord(**row._mapping)


async def refunds_of(connection: AsyncConnection, payment_id: str) -> list[RefundRecord]:
    """The payment's refunds, oldest first."""
    return [_record(row) for row in await connection.execute(_OF_PAYMENT, {"payment_id": payment_id})]


async def find_refund(
    connection: AsyncConnection, *, refund_id: str | None = None, provider_refund_id: str | None = None
) -> RefundRecord | None:
    """The refund with our id ``refund_id`` or the provider's id ``provider_refund_id``."""
    if refund_id is not None:
        row = (await connection.execute(_ONE, {"refund_id": refund_id})).first()
    else:
        row = (await connection.execute(_BY_PROVIDER_ID, {"provider_refund_id": provider_refund_id})).first()
    return _record(row) if row is not None else None


async def refundable_cents(connection: AsyncConnection, payment: PaymentRecord) -> int:
    """What can still be refunded of ``payment``: captured minus refunds confirmed and in flight."""
    if payment.status not in CAPTURED:
        return 0
    taken = (await connection.execute(_TAKEN, {"payment_id": payment.id})).scalar_one()
    return max(payment.amount_cents - int(taken), 0)


async def start_refund(
    uow: UnitOfWork,
    order: OrderRecord,
    payment: PaymentRecord,
    *,
    reason: str,
    amount_cents: int | None = None,
    return_id: str | None = None,
    refund_id: str | None = None,
) -> RefundRecord:
    """Record a PENDING refund of ``amount_cents`` (None: all that is left) and move the payment to
    REFUND_PENDING; the caller enqueues the `refund` step for it in the same transaction.

    ``refund_id`` fixes the refund's id (the order flow files its own refund of a payment under
    the payment's id, so that it exists once). Raises :class:`RefundRefused` when the payment was
    never captured, nothing is left, or ``amount_cents`` is more than what is left.
    """
    if payment.status not in CAPTURED:
        raise RefundRefused(
            "not_captured", f"payment {payment.id} is {payment.status}: only a captured payment is refunded"
        )
    connection = await uow.connection()
    left = await refundable_cents(connection, payment)
    if left == 0:
        raise RefundRefused("nothing_left", f"payment {payment.id} has nothing left to refund")
    amount = left if amount_cents is None else amount_cents
    if amount > left:
        raise RefundRefused(
            "too_large",
            f"{amount} cents is more than the {left} cents of payment {payment.id} left to refund",
            left_cents=left,
        )
    now = utcnow()
    refund = RefundRecord(
        id=refund_id or new_id(),
        order_id=order.id,
        payment_id=payment.id,
        amount_cents=amount,
        currency=payment.currency,
        status=RefundStatus.PENDING.value,
        reason=reason[:255] if reason else None,
        return_id=return_id,
        provider_refund_id=None,
        created_at=now,
    )
    await connection.execute(
        insert(_refunds),
        {
            "id": refund.id,
            "order_id": refund.order_id,
            "payment_id": refund.payment_id,
            "amount_cents": refund.amount_cents,
            "currency": refund.currency,
            "status": refund.status,
            "reason": refund.reason,
            "return_id": refund.return_id,
            "provider_refund_id": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    if payment.status != PaymentStatus.REFUND_PENDING:
        await move_payment(uow, payment, PaymentStatus.REFUND_PENDING)
    await add_note(uow, order, f"refund of {amount} cents requested")
    return refund


async def record_provider_refund(
    connection: AsyncConnection, refund_id: str, provider_refund_id: str
) -> bool:
    """Remember the provider's id of our refund (the first answer wins; a replay gives the same);
    False when no refund without one has that id (recorded before, or the refund is gone)."""
    result = await connection.execute(
        _SET_PROVIDER_ID,
        {"refund_id": refund_id, "provider_refund_id": provider_refund_id, "now": utcnow()},
    )
    return bool(result.rowcount)


async def _settle(
    uow: UnitOfWork, payment: PaymentRecord, refund: RefundRecord, status: RefundStatus
) -> bool:
    """Move the refund out of PENDING and the payment to where its refunds leave it; False when the
    refund was settled already."""
    connection = await uow.connection()
    if refund.status != RefundStatus.PENDING:
        return False
    result = await connection.execute(
        _SETTLE, {"refund_id": refund.id, "status": status.value, "now": utcnow()}
    )
    if result.rowcount != 1:
        return False
    refund.status = status.value
    refunded = payment.refunded_cents + (refund.amount_cents if status is RefundStatus.SUCCEEDED else 0)
    in_flight = (await connection.execute(_IN_FLIGHT, {"payment_id": payment.id})).scalar_one()
    target = payment_status_after_refunds(payment.amount_cents, refunded, in_flight)
    if target != payment.status:
        await move_payment(uow, payment, target, refunded_cents=refunded)
    elif refunded != payment.refunded_cents:
        await set_payment_columns(uow, payment, refunded_cents=refunded, updated_at=utcnow())
    return True


async def refund_confirmed(
    uow: UnitOfWork, order: OrderRecord, payment: PaymentRecord, refund: RefundRecord
) -> bool:
    """The provider confirmed ``refund``: count it, announce ``order.refunded`` and, when it pays
    back a return, mark the return REFUNDED. False when it was confirmed before."""
    if not await _settle(uow, payment, refund, RefundStatus.SUCCEEDED):
        return False
    await add_note(uow, order, f"refund of {refund.amount_cents} cents confirmed")
    connection = await uow.connection()
    if refund.return_id is not None:
        await connection.execute(_RETURN_REFUNDED, {"return_id": refund.return_id, "now": utcnow()})
    if order.status == OrderStatus.DELIVERED:
        # Only a delivered order has returns; the event's order document shows them as they are now.
        order.returns = await load_returns(connection, order.id)
    uow.announce_event(order, REFUNDED_EVENT, occurrence=refund.id)
    return True


async def refund_refused(
    uow: UnitOfWork, order: OrderRecord, payment: PaymentRecord, refund: RefundRecord, code: str
) -> bool:
    """The provider refused ``refund`` (``code``): it moves no money; False when already settled."""
    if not await _settle(uow, payment, refund, RefundStatus.FAILED):
        return False
    await add_note(
        uow, order, f"refund of {refund.amount_cents} cents refused by the provider ({code})"[:255]
    )
    return True
