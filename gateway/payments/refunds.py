"""Refunds the operator asks for (``POST /orders/{id}/refund``), whole or in parts.

Under the order's row lock, a refund of ``amount_cents`` (all that is left when absent) of the
order's captured payment is recorded PENDING, the payment moves to REFUND_PENDING, and the
``refund`` step is enqueued in the same transaction (:mod:`models.refunds`); the step asks the
provider with the refund's own idempotency key and the provider's webhook confirms it. What is
left is captured minus the refunds confirmed and in flight, read under that lock, so two
requests at the same moment take turns and together never ask for more than was captured (422
for the one that would). A refund moves money only: the order's status and its stock stay as
they are.

The request's ``Idempotency-Key`` is stored (scope ``refund``) with the order and the refund it
made: the same key answers 202 again with the payment and refunds nothing more, whatever the
body; used before for another order it is refused (422). An operator has no account, so the row
is filed under the order's owner and found again by (scope, key) alone (index
``ix_idempotency_keys_scope_key``). Two *simultaneous* first uses of one key for orders of two
different customers are not caught (each order's lock is its own); for one customer the primary
key catches them. Only accepted requests store their key: a refused one may be retried with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.http.auth import Caller
from gateway.http.db_errors import is_duplicate_key
from gateway.http.idempotency import request_hash
from gateway.http.order_access import find_order
from gateway.http.problems import IDEMPOTENCY_KEY_REUSED, NOT_REFUNDABLE, REFUND_TOO_LARGE, Problem
from gateway.payments.lookup import payment_detail, refund_documents
from gateway.payments.schemas import PaymentDetail
from messaging.queues import REFUND
from models.clock import utcnow
from models.order_record import OrderRecord, PaymentRecord
from models.refunds import RefundRefused, start_refund
from models.state import CAPTURED
from models.tables import IdempotencyKey
from models.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

REFUND_SCOPE = "refund"
ADMIN_REASON = "refund requested by admin"


@dataclass(frozen=True)
class RefundRequest:
    """A validated ``POST /orders/{id}/refund``: the order, the client's key, and what the body asks."""

    order_id: str
    key: str
    amount_cents: int | None = None
    reason: str | None = None

    @property
    def body_hash(self) -> str:
        """The hash stored with the key (the body as understood, for the operator's records)."""
        return request_hash({"amount_cents": self.amount_cents, "reason": self.reason})


async def request_refund(units_of_work: UnitOfWorkFactory, request: RefundRequest) -> PaymentDetail:
    """Refund part or all of what is left of the order's captured payment; returns the payment document.

    Raises a 404 :class:`Problem` for an unknown order, 409 for a payment that was never captured
    or an archived order, 422 for more than is left or a key used before for another order.
    """
    async with units_of_work() as uow:
        # The order's lock makes requests for one order (and the steps changing it) take turns.
        order = await uow.lock_order(request.order_id)
        if order is None:
            # Not in the hot tables: archived (409) or unknown (404, from find_order).
            found = await find_order(uow.session, request.order_id, Caller(account_id=None))
            raise Problem(
                NOT_REFUNDABLE,
                f"order {found.order.id} is archived; its payment can no longer be refunded through the API",
            )
        earlier = await _earlier_use(uow, request.key)
        if earlier is not None:
            if earlier.order_id != order.id:
                raise _reused()
            # A key is stored only with a refund of the order's captured payment: its current
            # attempt, which no longer changes once captured.
            payment = order.payment
            assert payment is not None
            document = await _document(uow, payment)
            await uow.commit()  # nothing changed; ends the transaction and releases the lock
            log.info("refund.replayed", order_id=order.id, payment_id=payment.id, refund_id=earlier.result_id)
            return document
        payment = _captured_payment(order)
        try:
            refund = await start_refund(
                uow,
                order,
                payment,
                reason=request.reason or ADMIN_REASON,
                amount_cents=request.amount_cents,
            )
        except RefundRefused as refused:
            if refused.code == "not_captured":
                raise Problem(NOT_REFUNDABLE, str(refused), payment_status=payment.status) from None
            raise Problem(REFUND_TOO_LARGE, str(refused), left_cents=refused.left_cents) from None
        uow.enqueue(REFUND, order_id=order.id, payment_id=payment.id, refund_id=refund.id)
        uow.session.add(
            IdempotencyKey(
                account_id=order.account_id,
                key=request.key,
                scope=REFUND_SCOPE,
                request_hash=request.body_hash,
                order_id=order.id,
                result_id=refund.id,
                created_at=utcnow(),
            )
        )
        try:
            await uow.session.flush()
        except IntegrityError as exc:
            # The same key, just now, for another order of the same customer.
            if is_duplicate_key(exc):
                raise _reused() from None
            raise
        document = await _document(uow, payment)
        await uow.commit()
    log.info(
        "refund.requested",
        order_id=order.id,
        payment_id=payment.id,
        refund_id=refund.id,
        amount_cents=refund.amount_cents,
    )
    return document


def _captured_payment(order: OrderRecord) -> PaymentRecord:
    """The payment a refund of the order takes money back from: its current attempt, once captured."""
    payment = order.payment
    if payment is None or payment.status not in CAPTURED:
        status = payment.status if payment is not None else None
        raise Problem(
            NOT_REFUNDABLE,
            f"the payment of order {order.id} is {status or 'missing'}: only a payment that "
            "succeeded can be refunded",
            payment_status=status,
        )
    return payment


async def _document(uow: UnitOfWork, payment: PaymentRecord) -> PaymentDetail:
    return payment_detail(payment, await refund_documents(await uow.connection(), payment.id))


async def _earlier_use(uow: UnitOfWork, key: str) -> IdempotencyKey | None:
    """The stored use of a refund key, whichever order (and so whichever account) it was for."""
    return await uow.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.scope == REFUND_SCOPE, IdempotencyKey.key == key).limit(1)
    )


def _reused() -> Problem:
    return Problem(
        IDEMPOTENCY_KEY_REUSED,
        "this Idempotency-Key was already used for a refund of another order; use a new key for a new refund",
    )
