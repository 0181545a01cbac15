"""The operator's side of a return: receiving it (``POST /returns/{id}/receive``) or rejecting it
(``POST /returns/{id}/reject``).

Both are made by the gateway itself, under the order's row lock, like shipping and delivering:
a receive racing a reject (or a second receive) waits for the first and then finds the return
moved on. Repeating an action answers as the first time and changes nothing; the other action on
a return that has moved on is a conflict (409). A receive starts the refund of the return's
lines and enqueues the `refund` step for it in the same transaction, so the refund is asked of
the provider once the transaction has committed, and never unless it has.

An archived order's returns are all REFUNDED or REJECTED (archiving waits for the others):
nothing changes them any more, but repeating what was done still answers as before.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.http.auth import Caller
from gateway.http.problems import ILLEGAL_RETURN_MOVE, Problem
from gateway.returns.access import visible_return
from messaging.queues import REFUND
from models import documents
from models.returns import (
    Outcome,
    already_received,
    already_rejected,
    order_of_return,
    receive_return,
    reject_return,
)
from models.state import IllegalTransition
from models.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

OPERATOR = Caller(account_id=None)


def _conflict(return_id: str, status: str, action: str) -> Problem:
    return Problem(
        ILLEGAL_RETURN_MOVE,
        f"return {return_id} is {status}: only a REQUESTED return can be {action}",
        return_status=status,
    )


async def receive(units_of_work: UnitOfWorkFactory, return_id: str, *, restock: bool) -> documents.Return:
    """Receive the goods of a return (restocking them when ``restock``) and start its refund;
    returns the return as it is now.

    Raises a 404 :class:`Problem` for an unknown return and a 409 one for a rejected return.
    """
    async with units_of_work() as uow:
        connection = await uow.connection()
        order_id = await order_of_return(connection, return_id)
        order = await uow.lock_order(order_id) if order_id is not None else None
        if order is None:  # no such return, or its order was archived (before or just now)
            document = await _archived(connection, return_id)
            try:
                already_received(document.status)
            except IllegalTransition:
                raise _conflict(return_id, document.status, "received") from None
            return document
        try:
            outcome = await receive_return(uow, order, return_id, restock=restock)
        except IllegalTransition as refused:
            raise _conflict(return_id, refused.current, "received") from None
        if outcome.refund is not None:
            uow.enqueue(
                REFUND, order_id=order.id, payment_id=outcome.refund.payment_id, refund_id=outcome.refund.id
            )
        await uow.commit()
    _log("return.received", outcome, restock=restock)
    return outcome.document


async def reject(units_of_work: UnitOfWorkFactory, return_id: str, *, reason: str) -> documents.Return:
    """Reject a return (``reason`` tells the customer why); returns the return as it is now.

    Raises a 404 :class:`Problem` for an unknown return and a 409 one for a return received already.
    """
    async with units_of_work() as uow:
        connection = await uow.connection()
        order_id = await order_of_return(connection, return_id)
        order = await uow.lock_order(order_id) if order_id is not None else None
        if order is None:
            document = await _archived(connection, return_id)
            try:
                already_rejected(document.status)
            except IllegalTransition:
                raise _conflict(return_id, document.status, "rejected") from None
            return document
        try:
            outcome = await reject_return(uow, order, return_id, reason=reason)
        except IllegalTransition as refused:
            raise _conflict(return_id, refused.current, "rejected") from None
        await uow.commit()
    _log("return.rejected", outcome)
    return outcome.document


async def _archived(connection: AsyncConnection, return_id: str) -> documents.Return:
    """The return, read wherever it is now (its order was archived); 404 when there is none."""
    document, _ = await visible_return(connection, return_id, OPERATOR)
    return document


def _log(event: str, outcome: Outcome, **fields: object) -> None:
    log.info(
        event if outcome.changed else f"{event}_again",
        return_id=outcome.document.id,
        order_id=outcome.document.order_id,
        return_status=outcome.document.status,
        refund_id=outcome.refund.id if outcome.refund is not None else None,
        **fields,
    )
