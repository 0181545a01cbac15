"""Asking for a return (``POST /orders/{id}/returns``): one transaction under the order's lock records
the return, its history note, its email and event, and the request's ``Idempotency-Key``.

The key is stored (scope ``return``, with the order and the return it made) in the same
transaction as the return, so either both commit or neither. Requests for one order take turns
on the order's lock: a retry with the same key waits for the first one and then finds its key,
and answers with the same return; two requests for the last units never both get them. The same
key used with another body, or for another order, is refused (422); a request that was refused
stores no key, so it can be retried with the same key once corrected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.http.auth import Caller
from gateway.http.key_uses import KeyUse
from gateway.http.problems import (
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_REQUEST,
    NOT_RETURNABLE,
    Problem,
)
from gateway.returns.access import locked_order
from models import documents
from models.return_documents import find_return
from models.returns import ReturnRefused, request_return
from models.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

RETURN_SCOPE = "return"


@dataclass(frozen=True)
class ReturnRequest:
    """A validated ``POST /orders/{id}/returns``: whose, which order, the key, the body's hash and
    what it asks for."""

    account_id: str
    order_id: str
    key: str
    request_hash: str
    items: list[tuple[str, int]]
    reason: str | None

    @property
    def key_use(self) -> KeyUse:
        """The request's key as filed with the return it made."""
        return KeyUse(self.account_id, self.key, RETURN_SCOPE, self.order_id, self.request_hash)


@dataclass(frozen=True)
class Requested:
    """The return to answer with; ``replayed`` when an earlier request with the same key made it."""

    document: documents.Return
    replayed: bool


async def ask_for_return(
    units_of_work: UnitOfWorkFactory, request: ReturnRequest, *, window_seconds: int
) -> Requested:
    """Record the return ``request`` asks for, or find the one an earlier request with its key made.

    Raises a 404 :class:`Problem` for an order the customer cannot see, 409 when the order is not
    delivered, its return window has closed or it is archived, and 422 for items it cannot have or a
    key used before with another order or body.
    """
    caller = Caller(account_id=request.account_id)
    async with units_of_work() as uow:
        order = await locked_order(uow, request.order_id, caller)
        connection = await uow.connection()
        earlier = await request.key_use.earlier(connection)
        if earlier is not None:
            document = await _replayed(connection, request, earlier)
            await uow.commit()  # nothing changed; ends the transaction and releases the lock
            log.info("return.replayed", return_id=document.id)
            return Requested(document, replayed=True)
        if order is None:
            raise Problem(
                NOT_RETURNABLE, f"order {request.order_id} is archived: it can no longer be returned"
            )
        try:
            document = await request_return(
                uow, order, request.items, reason=request.reason, window_seconds=window_seconds
            )
        except ReturnRefused as refused:
            raise _refusal(refused, order.status) from None
        if not await request.key_use.record(connection, document.id):
            raise _reused()  # the same key, just now, for another order of the same customer
        await uow.commit()
    log.info("return.requested", return_id=document.id, lines=len(document.items))
    return Requested(document, replayed=False)


async def _replayed(connection: AsyncConnection, request: ReturnRequest, earlier: Any) -> documents.Return:
    """The return an earlier request with this key made, if it asked for the same thing."""
    if not request.key_use.repeats(earlier):
        raise _reused()
    found = await find_return(connection, earlier.result_id) if earlier.result_id else None
    if found is None:
        # Only if the first request's return vanished: nothing deletes returns today.
        raise Problem(
            IDEMPOTENCY_KEY_IN_USE,
            "the return this Idempotency-Key made cannot be found; retry shortly",
            headers={"Retry-After": "1"},
        )
    return found[0]


def _reused() -> Problem:
    return Problem(
        IDEMPOTENCY_KEY_REUSED,
        "this Idempotency-Key was already used for a return of another order or with another body; "
        "use a new key for a new return",
    )


def _refusal(refused: ReturnRefused, order_status: str) -> Problem:
    """The problem answering a refused request: 409 for the order's state, 422 for what was asked."""
    if refused.is_conflict:
        return Problem(NOT_RETURNABLE, str(refused), order_status=order_status)
    if refused.index is None:
        return Problem(INVALID_REQUEST, f"items: {refused}", field="items")
    part = "quantity" if refused.code == "too_many" else "sku"
    field = f"items[{refused.index}].{part}"
    if refused.left is not None:
        return Problem(INVALID_REQUEST, f"{field}: {refused}", field=field, limit=refused.left)
    return Problem(INVALID_REQUEST, f"{field}: {refused}", field=field)
