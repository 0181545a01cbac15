"""Changing how an order awaiting payment is paid (``POST /orders/{id}/payment``).

One transaction under the order's row lock: the current attempt becomes CANCELLED, the next one
is added PENDING (:mod:`models.payment_attempts`), `void` is enqueued for the replaced attempt
when the provider knows of it and `pay` for the new one, the history notes the change,
``order.updated`` is announced, and the request's ``Idempotency-Key`` is stored. Either all of
it commits or none.

The lock is what makes concurrent changes safe: two requests for one order take turns, the
second replaces what the first added, so the order never has two PENDING attempts and always
exactly one current one. A step racing the change (a payment result, the hold running out) is
seen before (the order is no longer AWAITING_PAYMENT: 409) or after (it acts on the new attempt).

The key (scope ``payment_change``) is filed under the customer, with the order it changed and the
attempt it made (``result_id``): the same key and body for the same order answer 202 with the
order as it is now and change nothing; another body, or another order, is refused (422). Only an
accepted change stores its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.http.auth import Caller
from gateway.http.key_uses import KeyUse
from gateway.http.order_access import FoundOrder, find_order
from gateway.http.problems import IDEMPOTENCY_KEY_REUSED, PAYMENT_NOT_CHANGEABLE, Problem
from gateway.payments.methods import payment_for
from messaging.queues import PAY, VOID
from models.order_flow import FollowUp
from models.order_record import OrderRecord
from models.payment_attempts import can_replace, replace_attempt
from models.tables import Account, Order, table_of
from models.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger(__name__)

SCOPE = "payment_change"

_accounts = table_of(Account)
_DEFAULT_TOKEN = select(_accounts.c.default_payment_token).where(_accounts.c.id == bindparam("account_id"))


@dataclass(frozen=True)
class PaymentChange:
    """A validated ``POST /orders/{id}/payment``: whose order, under which key, paid how."""

    account_id: str
    order_id: str
    key: str
    request_hash: str
    # None: pay with the account's default token (422 when it has none).
    payment: dict[str, Any] | None

    @property
    def key_use(self) -> KeyUse:
        """The request's key as filed with the attempt it made."""
        return KeyUse(self.account_id, self.key, SCOPE, self.order_id, self.request_hash)


@dataclass(frozen=True)
class _DefaultToken:
    """The account's default token, read for :func:`gateway.payments.methods.payment_for`."""

    default_payment_token: str | None


async def change_payment(units_of_work: UnitOfWorkFactory, change: PaymentChange) -> FoundOrder:
    """Replace the order's payment attempt with a new one paid as ``change`` says; the order after.

    Raises a :class:`Problem`: 404 for an order the customer cannot see, 409 when the order no
    longer awaits payment, 422 for a key used before with another body or order, or when no
    payment is named and the account has no default one.
    """
    async with units_of_work() as uow:
        order = await uow.lock_order(change.order_id)
        if order is None or order.account_id != change.account_id:
            # Missing or someone else's (404 both), or archived, hence final.
            return await _not_hot(uow, change)
        connection = await uow.connection()
        earlier = await change.key_use.earlier(connection)
        if earlier is not None:
            _check_same_request(earlier, change)
            await uow.commit()  # nothing changed; ends the transaction and releases the lock
            log.info("payment.change_replayed", attempt_id=earlier.result_id, order_status=order.status)
            return _found(order)
        if not can_replace(order):
            raise _not_changeable(order.status, order.payment.status if order.payment else None)
        payment = payment_for(change.payment, await _default_token(connection, change.account_id))
        replaced = order.payment
        assert replaced is not None  # can_replace: there is a PENDING attempt
        attempt, follow_up = await replace_attempt(
            uow, order, method=payment["method"], token=payment.get("token")
        )
        if follow_up is FollowUp.VOID:
            uow.enqueue(VOID, order_id=order.id, payment_id=replaced.id)
        uow.enqueue(PAY, order_id=order.id)
        # The same key, just now, for another order of the same customer: this order stays as it was.
        if not await change.key_use.record(connection, attempt.id):
            raise _reused()
        await uow.commit()
    log.info(
        "payment.changed",
        replaced_id=replaced.id,
        attempt_id=attempt.id,
        attempt=attempt.attempt,
        method=attempt.method,
        void=follow_up is FollowUp.VOID,
    )
    return _found(order)


async def _not_hot(uow: UnitOfWork, change: PaymentChange) -> FoundOrder:
    """The answer for an order not among the customer's hot ones: 404, or for an archived one the
    replay of its key (202) or 409."""
    found = await find_order(uow.session, change.order_id, Caller(account_id=change.account_id))
    connection = await uow.connection()
    earlier = await change.key_use.earlier(connection)
    if earlier is None:
        raise _not_changeable(found.order.status, None, archived=True)
    _check_same_request(earlier, change)
    await uow.commit()
    return found


def _found(order: OrderRecord) -> FoundOrder:
    # The record reads like the mapped row it was loaded from (and changed with).
    return FoundOrder(cast(Order, order))


def _check_same_request(earlier: Any, change: PaymentChange) -> None:
    if not change.key_use.repeats(earlier):
        raise _reused()


def _reused() -> Problem:
    return Problem(
        IDEMPOTENCY_KEY_REUSED,
        "this Idempotency-Key was already used to change the payment of another order or with "
        "another body; use a new key for a new change",
    )


def _not_changeable(order_status: str, payment_status: str | None, *, archived: bool = False) -> Problem:
    where = " and archived" if archived else ""
    why = (
        f"its payment is {payment_status}"
        if payment_status is not None and order_status == "AWAITING_PAYMENT"
        else f"it is {order_status}{where}"
    )
    return Problem(
        PAYMENT_NOT_CHANGEABLE,
        f"the payment of this order can no longer be changed: {why}; "
        "only an order awaiting payment can be paid another way",
        order_status=order_status,
    )


async def _default_token(connection: AsyncConnection, account_id: str) -> _DefaultToken:
    token = (await connection.execute(_DEFAULT_TOKEN, {"account_id": account_id})).scalar_one_or_none()
    return _DefaultToken(default_payment_token=token)
