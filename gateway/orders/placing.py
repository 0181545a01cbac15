"""Taking an order: one transaction writes the idempotency key, the order, its payment and the
``reserve`` message, or nothing at all.

The key row goes in first. Its primary key (account, key, scope) is what makes a retried or
doubled request safe: a second insert of the same key fails once the first commits (InnoDB makes
a concurrent one wait for that), and the loser answers with the winner's order, even after that
order was moved to the archive.

Before the key, the transaction locks the customer's account row, so one customer's orders are
taken one at a time: that keeps the unpaid-orders limit exact (:mod:`gateway.orders.unpaid_limit`),
and it is checked after the key, so a replay is answered even at the limit. An order that names
no payment is paid with the account's default token (:mod:`gateway.payments.methods`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.http.db_errors import is_deadlock, is_duplicate_key
from gateway.http.idempotency import request_hash
from gateway.http.order_access import FoundOrder
from gateway.http.problems import CURRENCY_MISMATCH, IDEMPOTENCY_KEY_IN_USE, IDEMPOTENCY_KEY_REUSED, Problem
from gateway.orders.cart_lines import checkout_lines
from gateway.orders.unpaid_limit import count_unpaid_orders, unknown_account
from gateway.payments.methods import payment_for
from messaging.queues import RESERVE
from models.archive import load_archived_order
from models.clock import utcnow
from models.order_record import HistoryRecord, LineRecord, OrderRecord, PaymentRecord
from models.state import OrderStatus
from models.tables import Account, IdempotencyKey, Item, Order, OrderHistory, OrderLine, Payment, new_id
from models.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)

SCOPE = "order"
# Currency of an order none of whose items is in the catalogue (it will be rejected anyway).
FALLBACK_CURRENCY = "USD"
_DEADLOCK_ATTEMPTS = 3


@dataclass(frozen=True)
class OrderRequest:
    """A validated ``POST /orders``: who, under which key, and the body as sent and as checked."""

    account_id: str
    key: str
    body: Any
    lines: list[dict[str, Any]]
    # None: pay with the account's default token (422 when it has none).
    payment: dict[str, Any] | None
    shipping_address: dict[str, Any] | None
    has_shipping_address: bool
    # "api" for POST /orders; "cart" for POST /cart/checkout, whose lines are read from the cart
    # inside the order's transaction (``lines`` is then unused) and leave it once the order is placed.
    source: str = "api"
    # The Idempotency-Key namespace: a key used for POST /orders never answers a checkout, or back.
    scope: str = SCOPE


@dataclass(frozen=True)
class Placed:
    """The order to answer with; ``replayed`` when an earlier request with the same key made it."""

    found: FoundOrder
    replayed: bool

    @property
    def order(self) -> Any:
        return self.found.order


async def place_order(
    units_of_work: UnitOfWorkFactory, request: OrderRequest, *, max_unpaid_orders: int | None = None
) -> Placed:
    """Create the order of ``request``, or find the one an earlier request with its key created.

    Raises :class:`Problem` 422 when the key was used with a different body, the items are
    priced in different currencies, or no payment was named and the account has no default
    one; 429 when the customer already has ``max_unpaid_orders`` unpaid orders (pass
    ``settings.max_unpaid_orders``; None means no limit).
    """
    fingerprint = request_hash(request.body)
    for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
        try:
            order = await _create(units_of_work, request, fingerprint, max_unpaid_orders)
        except DBAPIError as exc:
            # Several identical requests waiting on one key can deadlock if its first holder rolls
            # back; InnoDB then aborts one of them, which is safe to run again from the start.
            if is_deadlock(exc) and attempt < _DEADLOCK_ATTEMPTS:
                log.info("order.deadlock_retry", attempt=attempt)
                continue
            raise
        if order is not None:
            # The record built here reads like the mapped row it was written as.
            return Placed(FoundOrder(cast(Order, order)), replayed=False)
        return Placed(await _replay(units_of_work, request, fingerprint), replayed=True)
    raise AssertionError("unreachable")


# Declarative classes type __table__ as a FromClause; these are plain tables.
_accounts = cast(Table, Account.__table__)
_keys = cast(Table, IdempotencyKey.__table__)
_items = cast(Table, Item.__table__)
_orders = cast(Table, Order.__table__)
_lines = cast(Table, OrderLine.__table__)
_history = cast(Table, OrderHistory.__table__)
_payments = cast(Table, Payment.__table__)
_LOCK_CUSTOMER = (
    select(_accounts.c.id, _accounts.c.default_payment_token, _accounts.c.shipping_address)
    .where(_accounts.c.id == bindparam("account_id"))
    .with_for_update()
)
_INSERT_KEY = insert(_keys)
_INSERT_ORDER = insert(_orders)
_INSERT_LINES = insert(_lines)
_INSERT_HISTORY = insert(_history)
_INSERT_PAYMENT = insert(_payments)


async def _create(
    units_of_work: UnitOfWorkFactory, request: OrderRequest, fingerprint: str, max_unpaid_orders: int | None
) -> OrderRecord | None:
    """The new order, or None when the key is already taken.

    Written with one statement per table (lines in one multi-row INSERT); the order answered is
    the record built here, not read back.
    """
    async with units_of_work() as uow:
        connection = await uow.connection()
        # The account row's lock makes one customer's orders take turns, so the unpaid-orders
        # limit counts every order committed before this one (gateway.orders.unpaid_limit).
        account = (await connection.execute(_LOCK_CUSTOMER, {"account_id": request.account_id})).first()
        if account is None:
            raise unknown_account()
        order_id, now = new_id(), utcnow()
        try:
            await connection.execute(
                _INSERT_KEY,
                {
                    "account_id": request.account_id,
                    "key": request.key,
                    "scope": request.scope,
                    "request_hash": fingerprint,
                    "order_id": order_id,
                    "created_at": now,
                },
            )
        except IntegrityError as exc:
            if is_duplicate_key(exc):
                return None
            raise
        # Only now, so that a replayed key (above) still answers when the customer is at the limit.
        await count_unpaid_orders(connection, request.account_id, max_unpaid_orders)
        payment = payment_for(request.payment, account)

        requested = (
            await checkout_lines(connection, request.account_id)
            if request.source == "cart"
            else request.lines
        )
        lines, currency, total = await _price(connection, requested)
        shipping = request.shipping_address if request.has_shipping_address else account.shipping_address
        order = OrderRecord(
            id=order_id,
            account_id=request.account_id,
            status=OrderStatus.PENDING.value,
            reason=None,
            total_cents=total,
            currency=currency,
            hold_expires_at=None,
            shipping_address=shipping,
            source=request.source,
            created_at=now,
            updated_at=now,
            lines=lines,
            history=[HistoryRecord(status=OrderStatus.PENDING.value, reason=None, note=None, at=now)],
            payments=[
                PaymentRecord.pending(
                    id=new_id(),
                    order_id=order_id,
                    attempt=1,
                    method=payment["method"],
                    token=payment.get("token"),
                    amount_cents=total,
                    currency=currency,
                    now=now,
                )
            ],
        )
        await _insert(connection, order)
        uow.enqueue(RESERVE, order_id=order_id)
        await uow.commit()
        log.info("order.accepted", order_id=order_id, total_cents=total, currency=currency, lines=len(lines))
        return order


async def _insert(connection: AsyncConnection, order: OrderRecord) -> None:
    """Write a new order: its row, lines, first history entry and payment attempt."""
    await connection.execute(
        _INSERT_ORDER,
        {
            "id": order.id,
            "account_id": order.account_id,
            "status": order.status,
            "reason": None,
            "total_cents": order.total_cents,
            "currency": order.currency,
            "hold_expires_at": None,
            "shipping_address": order.shipping_address,
            "source": order.source,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
        },
    )
    await connection.execute(
        _INSERT_LINES,
        [
            {
                "order_id": order.id,
                "sku": line.sku,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in order.lines
        ],
    )
    await connection.execute(
        _INSERT_HISTORY,
        [
            {"order_id": order.id, "status": entry.status, "reason": None, "note": None, "at": entry.at}
            for entry in order.history
        ],
    )
    await connection.execute(
        _INSERT_PAYMENT,
        [payment.row() for payment in order.payments],
    )


_PRICES = select(_items.c.sku, _items.c.price_cents, _items.c.currency).where(
    _items.c.sku.in_(bindparam("skus", expanding=True))
)


async def _price(
    connection: AsyncConnection, requested: list[dict[str, Any]]
) -> tuple[list[LineRecord], str, int]:
    """Order lines priced from the catalogue (never from the client), their currency and total.

    A SKU missing from the catalogue still becomes a line, without a price: ``reserve`` rejects
    the order as ``unknown_item``, so the customer sees why in the order's history.
    """
    items = (await connection.execute(_PRICES, {"skus": [line["sku"] for line in requested]})).all()
    # SKU columns compare case-insensitively, so the catalogue's spelling is looked up the same way.
    by_sku = {item.sku.lower(): item for item in items}
    lines: list[LineRecord] = []
    currencies: set[str] = set()
    total = 0
    for line in requested:
        item = by_sku.get(line["sku"].lower())
        if item is None:
            lines.append(LineRecord(sku=line["sku"], quantity=line["quantity"], unit_price_cents=None))
            continue
        currencies.add(item.currency)
        total += item.price_cents * line["quantity"]
        lines.append(LineRecord(sku=item.sku, quantity=line["quantity"], unit_price_cents=item.price_cents))
    if len(currencies) > 1:
        raise Problem(
            CURRENCY_MISMATCH,
            "all items of one order must be priced in the same currency; "
            f"these are in {', '.join(sorted(currencies))}",
        )
    lines.sort(key=lambda line: line.sku)
    return lines, (currencies.pop() if currencies else FALLBACK_CURRENCY), total


async def _replay(units_of_work: UnitOfWorkFactory, request: OrderRequest, fingerprint: str) -> FoundOrder:
    """The order made by the earlier request with this key, if it had the same body.

    Keys outlive the hot order: one whose order was archived still answers with it.
    """
    async with units_of_work.sessionmaker() as session:
        key = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.account_id == request.account_id,
                IdempotencyKey.key == request.key,
                IdempotencyKey.scope == request.scope,
            )
        )
        if key is not None and key.request_hash != fingerprint:
            raise Problem(
                IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was already used with a different "
                "request body; use a new key for a new order",
            )
        order, archived = None, False
        if key is not None and key.order_id is not None:
            order = await session.scalar(select(Order).where(Order.id == key.order_id))
            if order is None:
                order, archived = await load_archived_order(session, key.order_id), True
        if order is None:
            # Only reachable if the key's first transaction vanished between our two reads.
            raise Problem(
                IDEMPOTENCY_KEY_IN_USE,
                "a request with this Idempotency-Key is still being processed; retry shortly",
                headers={"Retry-After": "1"},
            )
    log.info("order.replayed", order_id=order.id, archived=archived)
    return FoundOrder(order, archived)
