"""Refunds the operator asks for (``POST /orders/{id}/refund``).

A refund gives the whole payment back and leaves the order's status as it is (a delivered order
stays delivered; its history records the request). Under the order's row lock, a SUCCEEDED
payment moves to REFUND_PENDING and the ``refund`` step is enqueued in the same transaction; the
step asks the provider and its webhook marks the payment REFUNDED. A payment already
REFUND_PENDING or REFUNDED answers as it is and nothing more is enqueued, so a repeated request
refunds nothing more. A payment that never succeeded (PENDING, FAILED, CANCELLED) is not
refundable (409): cancelling the order is what gives up an unpaid payment.

The request's ``Idempotency-Key`` is stored (scope ``refund``) with the order it refunded: the
same key answers again with that order's payment, and is refused (422) for another order or
another body. The ``idempotency_keys`` table keys rows by account; an operator has no account, so
the row is filed under the order's owner and found again by (scope, key) alone. No index serves
that lookup yet (the primary key starts with the account), so it scans the table: fine for an
operator's occasional refund, but an index on (scope, key) belongs in the next migration. Two
*simultaneous* first uses of one key for orders of two different customers are not caught
(each order's lock is its own); for one customer the primary key catches them. Only accepted
requests (202) store their key: one refused with 409 may be retried with the same key once the
payment has succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.http.auth import Caller
from gateway.http.db_errors import is_duplicate_key
from gateway.http.order_access import find_order
from gateway.http.problems import IDEMPOTENCY_KEY_REUSED, NOT_REFUNDABLE, Problem
from gateway.payments.lookup import payment_detail
from gateway.payments.schemas import PaymentDetail
from messaging.queues import REFUND
from models.clock import utcnow
from models.state import PaymentStatus, move_payment, record_note
from models.tables import IdempotencyKey
from models.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

REFUND_SCOPE = "refund"
REFUND_NOTE = "refund requested by admin"
_ALREADY_REFUNDING = frozenset({PaymentStatus.REFUND_PENDING, PaymentStatus.REFUNDED})


@dataclass(frozen=True)
class RefundRequest:
    """A validated ``POST /orders/{id}/refund``: the order, the client's key and the body's hash."""

    order_id: str
    key: str
    request_hash: str


async def request_refund(units_of_work: UnitOfWorkFactory, request: RefundRequest) -> PaymentDetail:
    """Refund the order's payment in full (or find it refunding already); returns the payment document.

    Raises a 404 :class:`Problem` for an unknown order, 409 for a payment that was never paid or
    an archived order, 422 for a key used before with another order or body.
    """
    admin = Caller(account_id=None)
    async with units_of_work() as uow:
        session = uow.session
        # The order's lock makes requests for one order (and the steps changing it) take turns.
        found = await find_order(session, request.order_id, admin, lock=True)
        order = found.order
        earlier = await _earlier_use(session, request.key)
        if earlier is not None:
            _check_same_request(earlier, request)
            payment = order.payment
            # A key is stored only with an accepted refund, which needs a payment.
            assert payment is not None
            document = payment_detail(payment)
            await uow.commit()  # nothing changed; ends the transaction and releases the lock
            log.info(
                "refund.replayed", order_id=order.id, payment_id=payment.id, payment_status=payment.status
            )
            return document
        payment = order.payment
        if found.archived:
            raise Problem(
                NOT_REFUNDABLE,
                f"order {order.id} is archived; its payment can no longer be refunded through the API",
                payment_status=payment.status if payment else None,
            )
        status = PaymentStatus(payment.status) if payment is not None else None
        if status not in (PaymentStatus.SUCCEEDED, *_ALREADY_REFUNDING):
            raise Problem(
                NOT_REFUNDABLE,
                f"the payment of order {order.id} is "
                f"{status.value if status else 'missing'}: only a payment that "
                "succeeded can be refunded",
                payment_status=status.value if status else None,
            )
        assert payment is not None  # refused just above when missing
        queued = status == PaymentStatus.SUCCEEDED
        if queued:
            move_payment(payment, PaymentStatus.REFUND_PENDING)
            record_note(order, REFUND_NOTE)
            uow.enqueue(REFUND, order_id=order.id, payment_id=payment.id)
        session.add(
            IdempotencyKey(
                account_id=order.account_id,
                key=request.key,
                scope=REFUND_SCOPE,
                request_hash=request.request_hash,
                order_id=order.id,
                created_at=utcnow(),
            )
        )
        try:
            await session.flush()
        except IntegrityError as exc:
            # The same key, just now, for another order of the same customer.
            if is_duplicate_key(exc):
                raise _reused(request) from None
            raise
        document = payment_detail(payment)
        await uow.commit()
    log.info(
        "refund.requested" if queued else "refund.already_requested",
        order_id=order.id,
        payment_id=payment.id,
        payment_status=payment.status,
    )
    return document


async def _earlier_use(session: AsyncSession, key: str) -> IdempotencyKey | None:
    """The stored use of a refund key, whichever order (and so whichever account) it was for."""
    return await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == REFUND_SCOPE, IdempotencyKey.key == key).limit(1)
    )


def _check_same_request(earlier: IdempotencyKey, request: RefundRequest) -> None:
    if earlier.order_id != request.order_id or earlier.request_hash != request.request_hash:
        raise _reused(request)


def _reused(request: RefundRequest) -> Problem:
    return Problem(
        IDEMPOTENCY_KEY_REUSED,
        "this Idempotency-Key was already used for a refund of another order "
        "or with another body; use a new key for a new refund",
    )
