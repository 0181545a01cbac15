"""Status moves of a locked :class:`~models.order_record.OrderRecord`, written as SQL statements.

Each move is checked against the state machine (:mod:`models.state`), applied to the record so
the step goes on with what it just wrote (no reload), written with one statement, and the order
move announced to the unit of work: that is what gives the move its email, domain event and
live-status nudge at commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, update

from models.clock import utcnow
from models.order_record import HistoryRecord, OrderRecord, PaymentRecord
from models.state import OrderStatus, PaymentStatus, Reason, require_payment_move, require_transition
from models.tables import Order, OrderHistory, Payment, table_of

if TYPE_CHECKING:
    from models.unit_of_work import UnitOfWork

_orders = table_of(Order)
_history = table_of(OrderHistory)
_payments = table_of(Payment)

_UPDATE_ORDER = (
    update(_orders)
    .where(_orders.c.id == bindparam("order_id"))
    .values(
        status=bindparam("status"),
        reason=bindparam("reason"),
        updated_at=bindparam("now"),
        hold_expires_at=bindparam("hold_expires_at"),
    )
)
_INSERT_HISTORY = insert(_history)


async def move_order(
    uow: UnitOfWork,
    order: OrderRecord,
    target: OrderStatus,
    reason: Reason | None = None,
    note: str | None = None,
) -> None:
    """Move ``order`` to ``target``, record it in its history and announce it.

    Raises :class:`IllegalTransition` when the move is not in the table.
    """
    require_transition(order.status, target, reason, order.reason)
    now = utcnow()
    order.status = target.value
    order.reason = reason.value if reason else None
    order.updated_at = now
    connection = await uow.connection()
    await connection.execute(
        _UPDATE_ORDER,
        {
            "order_id": order.id,
            "status": order.status,
            "reason": order.reason,
            "now": now,
            "hold_expires_at": order.hold_expires_at,
        },
    )
    await _append_history(connection, order, note, now)
    uow.announce(order, order.status)


async def add_note(uow: UnitOfWork, order: OrderRecord, note: str) -> None:
    """Append a history entry that keeps the status (e.g. a refund of a late payment)."""
    await _append_history(await uow.connection(), order, note, utcnow())


async def _append_history(connection: Any, order: OrderRecord, note: str | None, now: Any) -> None:
    entry = HistoryRecord(status=order.status, reason=order.reason, note=note, at=now)
    order.history.append(entry)
    await connection.execute(
        _INSERT_HISTORY,
        {"order_id": order.id, "status": entry.status, "reason": entry.reason, "note": note, "at": now},
    )


async def move_payment(
    uow: UnitOfWork, payment: PaymentRecord, target: PaymentStatus, **columns: Any
) -> None:
    """Move ``payment`` to ``target`` (and set ``columns``, e.g. the provider's id) in one statement.

    Raises :class:`IllegalTransition` on an illegal move.
    """
    require_payment_move(payment.status, target)
    await set_payment_columns(uow, payment, status=target.value, updated_at=utcnow(), **columns)


async def set_payment_columns(uow: UnitOfWork, payment: PaymentRecord, **columns: Any) -> None:
    """Set ``columns`` of ``payment`` (provider details such as ``provider_payment_id``), in the
    record and in one UPDATE."""
    for name, value in columns.items():
        setattr(payment, name, value)
    connection = await uow.connection()
    await connection.execute(update(_payments).where(_payments.c.id == payment.id).values(**columns))
