"""A new payment attempt for an order awaiting payment: the customer pays another way.

An order follows its current attempt only, the one with the highest ``attempt``. Replacing it
gives the current one up (CANCELLED; the provider is told to void it if it knows of it) and adds
the next attempt, PENDING, for the same amount and currency, which `pay` then requests. The
hold keeps its expiry: a new way to pay buys no extra time. Should the replaced attempt succeed
anyway (the customer paid on its page just before switching), `settle` refunds it in full and
the order stays on its current attempt (:func:`models.order_flow.replaced_payment_succeeded`).

Every function takes an order its caller locked in the same unit of work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, insert, update

from models.clock import utcnow
from models.events import UPDATED_EVENT
from models.order_flow import FollowUp
from models.order_moves import add_note, move_payment
from models.order_record import OrderRecord, PaymentRecord
from models.state import IllegalTransition, OrderStatus, PaymentStatus
from models.tables import Order, Payment, new_id, table_of

if TYPE_CHECKING:
    from models.unit_of_work import UnitOfWork

#: The history note of a replaced attempt (the order's status stays AWAITING_PAYMENT).
PAYMENT_CHANGED_NOTE = "payment_changed"

_orders = table_of(Order)
_payments = table_of(Payment)
_INSERT_PAYMENT = insert(_payments)
_TOUCH_ORDER = (
    update(_orders).where(_orders.c.id == bindparam("order_id")).values(updated_at=bindparam("now"))
)


def can_replace(order: OrderRecord) -> bool:
    """Whether the order's attempt may be replaced now: it awaits payment on a PENDING attempt."""
    current = order.payment
    return (
        order.status == OrderStatus.AWAITING_PAYMENT
        and current is not None
        and current.status == PaymentStatus.PENDING
    )


async def replace_attempt(
    uow: UnitOfWork, order: OrderRecord, *, method: str, token: str | None
) -> tuple[PaymentRecord, FollowUp]:
    """Cancel the order's current attempt and add the next one, paid by ``method`` (and ``token``).

    Returns the new attempt and what the provider must be told about the replaced one
    (``FollowUp.VOID`` when the provider already knows of it; otherwise `pay`, which may be
    asking for it right now, voids it once it records the provider's id). The history notes
    the change and ``order.updated`` is announced, once per new attempt. Raises
    :class:`IllegalTransition` unless :func:`can_replace`.
    """
    replaced = order.payment
    if replaced is None or not can_replace(order):
        raise IllegalTransition("payment", replaced.status if replaced else "none", PaymentStatus.CANCELLED)
    await move_payment(uow, replaced, PaymentStatus.CANCELLED)
    now = utcnow()
    attempt = PaymentRecord.pending(
        id=new_id(),
        order_id=order.id,
        attempt=max(payment.attempt for payment in order.payments) + 1,
        method=method,
        token=token,
        # The same charge as before: the order's lines and total do not change.
        amount_cents=replaced.amount_cents,
        currency=replaced.currency,
        now=now,
    )
    connection = await uow.connection()
    await connection.execute(_INSERT_PAYMENT, attempt.row())
    order.payments.append(attempt)
    # hold_expires_at is left as it is: only updated_at says the order changed.
    order.updated_at = now
    await connection.execute(_TOUCH_ORDER, {"order_id": order.id, "now": now})
    await add_note(uow, order, PAYMENT_CHANGED_NOTE)
    uow.announce_event(order, UPDATED_EVENT, occurrence=attempt.id)
    return attempt, FollowUp.VOID if replaced.provider_payment_id else FollowUp.NOTHING
