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

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.problems import INVALID_TOKEN, TOO_MANY_UNPAID_ORDERS, Problem
from models.state import OrderStatus
from models.tables import Account, Order

UNPAID_STATUSES = (OrderStatus.PENDING.value, OrderStatus.AWAITING_PAYMENT.value)
# Holds run out after HOLD_SECONDS at most; a minute is a fair first wait before trying again.
RETRY_AFTER_SECONDS = 60


async def lock_customer(session: AsyncSession, account_id: str) -> Account:
    """The customer's account, its row locked until the transaction ends; 401 when it is gone."""
    account = await session.scalar(select(Account).where(Account.id == account_id).with_for_update()
                                   .execution_options(populate_existing=True))
    if account is None:
        raise Problem(INVALID_TOKEN, "the access token's account does not exist",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return account


async def check_unpaid_orders(session: AsyncSession, account_id: str, limit: int | None) -> None:
    """A 429 problem when the customer already has ``limit`` unpaid orders (None: no limit).

    The caller holds the account lock (:func:`lock_customer`).
    """
    if limit is None:
        return
    unpaid = await session.scalar(select(func.count()).select_from(Order).where(
        Order.account_id == account_id, Order._status.in_(UNPAID_STATUSES)))
    if unpaid >= limit:
        raise Problem(TOO_MANY_UNPAID_ORDERS,
                      f"you have {unpaid} orders waiting for payment and at most {limit} are allowed at once; "
                      "pay for or cancel one of them first",
                      headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, limit=limit)
