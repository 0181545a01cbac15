"""The hoarding limit: one customer may have at most ``MAX_UNPAID_ORDERS`` orders waiting for payment.

An order holds stock from ``reserve`` until it is paid or its hold runs out, so a bot placing
orders it never pays could take a flash sale's stock out of reach. Orders PENDING or
AWAITING_PAYMENT count against the limit; once one is paid, cancelled, rejected or expired, room
is made for another.

Counting and inserting happen in the order's own transaction, after the customer's account row
is locked (``SELECT ... FOR UPDATE``): a second order of the same customer waits for the first to
commit or roll back and then counts it, so the limit holds however many requests arrive at once.
Different customers never wait for each other. The idempotency key is written before counting,
so a replayed request finds its order even when the customer is at the limit.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gateway.http.problems import INVALID_TOKEN, TOO_MANY_UNPAID_ORDERS, Problem
from models.state import OrderStatus
from models.tables import Order

UNPAID_STATUSES = (OrderStatus.PENDING.value, OrderStatus.AWAITING_PAYMENT.value)
# Holds run out after HOLD_SECONDS at most; a minute is a fair first wait before trying again.
RETRY_AFTER_SECONDS = 60


_orders = Order.__table__
_COUNT_UNPAID = (
    select(func.count())
    .select_from(_orders)
    .where(_orders.c.account_id == bindparam("account_id"), _orders.c.status.in_(UNPAID_STATUSES))
)


def unknown_account() -> Problem:
    """The 401 for a valid token whose account no longer exists."""
    return Problem(
        INVALID_TOKEN,
        "the access token's account does not exist",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def count_unpaid_orders(
    connection: AsyncConnection | AsyncSession, account_id: str, limit: int | None
) -> None:
    """A 429 problem when the customer already has ``limit`` unpaid orders (None: no limit).

    The caller holds the customer's account lock.
    """
    if limit is None:
        return
    unpaid = (await connection.execute(_COUNT_UNPAID, {"account_id": account_id})).scalar_one()
    if unpaid >= limit:
        raise Problem(
            TOO_MANY_UNPAID_ORDERS,
            f"you have {unpaid} orders waiting for payment and at most {limit} are allowed at once; "
            "pay for or cancel one of them first",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            limit=limit,
        )
