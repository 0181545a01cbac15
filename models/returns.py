"""Returns of delivered items: requested by the customer, then received or rejected by the operator.

A return is REQUESTED for some units of a DELIVERED order, within ``RETURN_WINDOW_SECONDS`` of
its delivery and for no more than was delivered less what other returns (those not REJECTED)
already claim. When the goods arrive it is RECEIVED: its units go back on sale if asked
(:func:`models.inventory.restock_returned`) and its lines' value, at the prices paid, is refunded
from the order's captured payment (:func:`models.refunds.start_refund`); the provider's
confirmation makes it REFUNDED (:func:`models.refunds.refund_confirmed`). The operator may reject
a REQUESTED return instead, which frees its units for another return. The order stays DELIVERED
throughout; its history notes each step.

Every function takes an order its caller locked in the same unit of work
(:meth:`models.unit_of_work.UnitOfWork.lock_order`): requests and moves of one order's returns
take turns on that lock, so two requests for the last units never both get them, and a receive
racing a reject (or a second receive) finds the return already moved. The caller enqueues the
`refund` step for the refund a receive starts, in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update

from models import documents
from models.clock import utcnow
from models.events import RETURN_RECEIVED_EVENT, RETURN_REQUESTED_EVENT
from models.inventory import restock_returned
from models.order_moves import add_note
from models.order_record import OrderRecord
from models.refunds import RefundRecord, refundable_cents, start_refund
from models.return_documents import load_returns
from models.state import DomainError, IllegalTransition, OrderStatus, ReturnStatus, require_return_move
from models.tables import Return, ReturnLine, new_id, table_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from models.unit_of_work import UnitOfWork

_returns = table_of(Return)
_lines = table_of(ReturnLine)

REQUESTED_NOTE = "return requested"
RECEIVED_NOTE = "return received"
REJECTED_NOTE = "return rejected"
NOTHING_TO_REFUND_NOTE = "return refunded: nothing was left to refund"

#: Where a receive (or a reject) has been already: repeating it changes nothing.
_RECEIVED = frozenset({ReturnStatus.RECEIVED, ReturnStatus.REFUNDED})
_REJECTED = frozenset({ReturnStatus.REJECTED})


class ReturnRefused(DomainError):
    """A return that cannot be requested. ``code`` says why:

    - ``not_delivered``, ``window_closed``: the order cannot be returned (now);
    - ``no_items``, ``unknown_sku``, ``duplicate_sku``, ``too_many``: the request asks for what it
      cannot have; ``index`` is the offending item's position in the request, ``left`` (for
      ``too_many``) how many units of it can still be returned.
    """

    CONFLICTS = frozenset({"not_delivered", "window_closed"})

    def __init__(self, code: str, message: str, *, index: int | None = None, left: int | None = None):
        self.code, self.index, self.left = code, index, left
        super().__init__(message)

    @property
    def is_conflict(self) -> bool:
        """The order's state refuses it (not what was asked): a conflict rather than a bad request."""
        return self.code in self.CONFLICTS


@dataclass(slots=True)
class ReturnLineRecord:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(slots=True)
class ReturnRecord:
    """One return as a move reads it under its order's lock."""

    id: str
    order_id: str
    status: str
    reason: str | None
    rejection_reason: str | None
    restocked: bool | None
    refund_id: str | None
    lines: list[ReturnLineRecord]

    @property
    def value_cents(self) -> int:
        """What the returned units cost the customer: quantity times the unit price paid."""
        return sum(line.quantity * line.unit_price_cents for line in self.lines)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a move did: the return as it is now, whether anything changed, and the refund a receive
    started (the caller enqueues the `refund` step for it)."""

    document: documents.Return
    changed: bool
    refund: RefundRecord | None = None


_OF_RETURN = select(_returns).where(_returns.c.id == bindparam("return_id"))
_LINES_OF_RETURN = select(_lines).where(_lines.c.return_id == bindparam("return_id")).order_by(_lines.c.sku)
#: Units of each SKU that the order's returns claim, leaving out rejected ones.
_CLAIMED = (
    select(_lines.c.sku, func.sum(_lines.c.quantity))
    .join(_returns, _returns.c.id == _lines.c.return_id)
    .where(_lines.c.order_id == bindparam("order_id"), _returns.c.status != ReturnStatus.REJECTED.value)
    .group_by(_lines.c.sku)
)


async def read_return(connection: AsyncConnection, return_id: str) -> ReturnRecord | None:
    """The return ``return_id`` with its lines (from the hot tables), or None."""
    row = (await connection.execute(_OF_RETURN, {"return_id": return_id})).first()
    if row is None:
        return None
    lines = [
        ReturnLineRecord(line.sku, int(line.quantity), int(line.unit_price_cents))
        for line in await connection.execute(_LINES_OF_RETURN, {"return_id": return_id})
    ]
    return ReturnRecord(
        id=row.id,
        order_id=row.order_id,
        status=row.status,
        reason=row.reason,
        rejection_reason=row.rejection_reason,
        restocked=None if row.restocked is None else bool(row.restocked),
        refund_id=row.refund_id,
        lines=lines,
    )


async def order_of_return(connection: AsyncConnection, return_id: str) -> str | None:
    """The id of the (hot) order a return belongs to; None when there is no such return here."""
    return (
        await connection.execute(select(_returns.c.order_id).where(_returns.c.id == return_id))
    ).scalar_one_or_none()


def delivered_at(order: OrderRecord) -> datetime | None:
    """When the order was delivered: its history's move to DELIVERED (later notes repeat the status)."""
    return next((entry.at for entry in order.history if entry.status == OrderStatus.DELIVERED), None)


def _check_returnable(order: OrderRecord, window_seconds: int, now: datetime) -> None:
    if order.status != OrderStatus.DELIVERED:
        raise ReturnRefused(
            "not_delivered", f"order {order.id} is {order.status}: only a delivered order can be returned"
        )
    delivered = delivered_at(order)
    if delivered is not None and now > delivered + timedelta(seconds=window_seconds):
        raise ReturnRefused(
            "window_closed",
            f"order {order.id} was delivered more than {window_seconds} seconds ago: its return window "
            "has closed",
        )


async def _wanted_lines(
    connection: AsyncConnection, order: OrderRecord, items: Sequence[tuple[str, int]]
) -> list[ReturnLineRecord]:
    """The lines a request asks for, checked against what was delivered and what is claimed."""
    ordered = {line.sku.lower(): line for line in order.lines}
    claimed: dict[str, int] = defaultdict(int)
    for sku, quantity in (await connection.execute(_CLAIMED, {"order_id": order.id})).all():
        claimed[sku.lower()] += int(quantity)
    seen: dict[str, int] = {}
    lines = []
    for index, (sku, quantity) in enumerate(items):
        key = sku.lower()
        if key in seen:
            raise ReturnRefused(
                "duplicate_sku", f"{sku!r} already appears in items[{seen[key]}]", index=index
            )
        seen[key] = index
        line = ordered.get(key)
        if line is None:
            raise ReturnRefused("unknown_sku", f"order {order.id} has no line of {sku!r}", index=index)
        left = line.quantity - claimed[key]
        if quantity > left:
            raise ReturnRefused(
                "too_many",
                f"{quantity} of {line.sku} asked, but only {left} of the {line.quantity} delivered "
                "are not already in a return",
                index=index,
                left=left,
            )
        lines.append(ReturnLineRecord(line.sku, quantity, line.unit_price_cents or 0))
    return sorted(lines, key=lambda line: line.sku)


async def _announce(uow: UnitOfWork, order: OrderRecord, event_type: str, return_id: str) -> documents.Return:
    """Show the order's returns as they are now in its events, announce ``event_type`` for the
    return (an email and a domain event each), and return that return's document."""
    order.returns = await load_returns(await uow.connection(), order.id)
    uow.announce_event(order, event_type, occurrence=return_id)
    return _document_of(order, return_id)


def _document_of(order: OrderRecord, return_id: str) -> documents.Return:
    return next(document for document in order.returns if document.id == return_id)


async def request_return(
    uow: UnitOfWork,
    order: OrderRecord,
    items: Sequence[tuple[str, int]],
    *,
    reason: str | None,
    window_seconds: int,
    now: datetime | None = None,
) -> documents.Return:
    """Record a REQUESTED return of ``items`` ((sku, quantity) pairs) of the locked ``order``.

    Raises :class:`ReturnRefused` when the order is not delivered, its window has closed, or an
    item is not in the order, repeated, or more than is left to return.
    """
    now = now or utcnow()
    _check_returnable(order, window_seconds, now)
    if not items:
        raise ReturnRefused("no_items", "a return needs at least one item")
    lines = await _wanted_lines(await uow.connection(), order, items)
    return_id = new_id()
    connection = await uow.connection()
    await connection.execute(
        insert(_returns),
        {
            "id": return_id,
            "order_id": order.id,
            "status": ReturnStatus.REQUESTED.value,
            "reason": reason,
            "rejection_reason": None,
            "restocked": None,
            "refund_id": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    await connection.execute(
        insert(_lines),
        [
            {
                "return_id": return_id,
                "sku": line.sku,
                "order_id": order.id,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in lines
        ],
    )
    await add_note(uow, order, REQUESTED_NOTE)
    return await _announce(uow, order, RETURN_REQUESTED_EVENT, return_id)


def already_received(status: str) -> bool:
    """Whether a receive of a return in ``status`` is a repeat (True: it changes nothing); raises
    :class:`IllegalTransition` when the return cannot be received (it was rejected)."""
    if ReturnStatus(status) in _RECEIVED:
        return True
    require_return_move(status, ReturnStatus.RECEIVED)
    return False


def already_rejected(status: str) -> bool:
    """Whether a reject of a return in ``status`` is a repeat (True: it changes nothing); raises
    :class:`IllegalTransition` when the return cannot be rejected (it was received)."""
    if ReturnStatus(status) in _REJECTED:
        return True
    require_return_move(status, ReturnStatus.REJECTED)
    return False


async def _return_of(uow: UnitOfWork, order: OrderRecord, return_id: str) -> ReturnRecord:
    found = await read_return(await uow.connection(), return_id)
    if found is None or found.order_id != order.id:
        raise LookupError(f"order {order.id} has no return {return_id}")
    return found


async def _move(uow: UnitOfWork, ret: ReturnRecord, target: ReturnStatus, **columns: Any) -> None:
    """Move ``ret`` to ``target`` (and set ``columns``) with one conditional statement."""
    require_return_move(ret.status, target)
    result = await (await uow.connection()).execute(
        update(_returns)
        .where(_returns.c.id == ret.id, _returns.c.status == ret.status)
        .values(status=target.value, updated_at=utcnow(), **columns)
    )
    # The order's lock makes every move of its returns take turns: the row is as read.
    if result.rowcount != 1:
        raise IllegalTransition("return", ret.status, target)
    ret.status = target.value
    for name, value in columns.items():
        setattr(ret, name, value)


async def receive_return(uow: UnitOfWork, order: OrderRecord, return_id: str, *, restock: bool) -> Outcome:
    """The goods of a REQUESTED return arrived: RECEIVED, restocked if ``restock``, and a refund of
    its lines' value started on the order's payment (at most what is left of it).

    When nothing is left to refund (the operator refunded the payment whole already), the return
    becomes REFUNDED at once. Receiving again changes nothing. Raises :class:`IllegalTransition`
    for a rejected return and :class:`LookupError` when ``order`` has no such return.
    """
    ret = await _return_of(uow, order, return_id)
    if already_received(ret.status):
        return Outcome(_document_of(await _with_returns(uow, order), ret.id), changed=False)
    connection = await uow.connection()
    if restock:
        await restock_returned(connection, order, {line.sku: line.quantity for line in ret.lines})
    payment = order.payment
    left = await refundable_cents(connection, payment) if payment is not None else 0
    amount = min(ret.value_cents, left)
    await _move(uow, ret, ReturnStatus.RECEIVED, restocked=restock)
    await add_note(uow, order, RECEIVED_NOTE)
    refund = None
    if amount > 0:
        assert payment is not None  # something is left to refund only of a payment
        refund = await start_refund(
            uow, order, payment, reason=f"return {ret.id}", amount_cents=amount, return_id=ret.id
        )
        await _set(uow, ret, refund_id=refund.id)
    else:
        await _move(uow, ret, ReturnStatus.REFUNDED)
        await add_note(uow, order, NOTHING_TO_REFUND_NOTE)
    document = await _announce(uow, order, RETURN_RECEIVED_EVENT, ret.id)
    return Outcome(document, changed=True, refund=refund)


async def reject_return(uow: UnitOfWork, order: OrderRecord, return_id: str, *, reason: str) -> Outcome:
    """Refuse a REQUESTED return (``reason`` says why): REJECTED, its units free for another return.

    Rejecting again changes nothing. Raises :class:`IllegalTransition` for a return received
    already and :class:`LookupError` when ``order`` has no such return.
    """
    ret = await _return_of(uow, order, return_id)
    if already_rejected(ret.status):
        return Outcome(_document_of(await _with_returns(uow, order), ret.id), changed=False)
    await _move(uow, ret, ReturnStatus.REJECTED, rejection_reason=reason)
    await add_note(uow, order, REJECTED_NOTE)
    order.returns = await load_returns(await uow.connection(), order.id)
    return Outcome(_document_of(order, ret.id), changed=True)


async def _set(uow: UnitOfWork, ret: ReturnRecord, **columns: Any) -> None:
    """Set ``columns`` of ``ret`` without moving it."""
    await (await uow.connection()).execute(
        update(_returns).where(_returns.c.id == ret.id).values(updated_at=utcnow(), **columns)
    )
    for name, value in columns.items():
        setattr(ret, name, value)


async def _with_returns(uow: UnitOfWork, order: OrderRecord) -> OrderRecord:
    order.returns = await load_returns(await uow.connection(), order.id)
    return order
