"""An order with its lines, payments, holds and history, read in one statement.

The steps of an order (reserve, pay, settle, expire, cancel) read the whole order under its row
lock and then change it with a few targeted statements (:mod:`models.order_moves`). Loading it
through the ORM took five SELECTs (the row, then one per relationship) and most of a worker's
CPU; here one statement, a UNION ALL of five index lookups, returns the row and its children in
one round trip. (Aggregating the children as JSON arrays in the database cost it about ten times
as much as a plain lookup.)

The record has the attributes :func:`models.views.order_json` and the state machine read, so
the API document and domain events look the same whichever way an order was loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.state import PaymentStatus


def _datetime(value: str | datetime) -> datetime:
    """A DATETIME(6) value, as is or rendered as text (``YYYY-MM-DD HH:MM:SS.ffffff``) where the
    UNION's column mixes it with other types."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _time(value: str | datetime | None) -> datetime | None:
    """A nullable DATETIME(6) value (see :func:`_datetime`)."""
    return None if value is None else _datetime(value)


@dataclass(slots=True)
class LineRecord:
    sku: str
    quantity: int
    unit_price_cents: int | None


@dataclass(slots=True)
class PaymentRecord:
    id: str
    order_id: str
    attempt: int
    method: str
    token: str | None
    amount_cents: int
    currency: str
    status: str
    provider_payment_id: str | None
    checkout_url: str | None
    provider_refund_id: str | None
    refunded_cents: int
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def pending(
        cls,
        *,
        id: str,
        order_id: str,
        attempt: int,
        method: str,
        token: str | None,
        amount_cents: int,
        currency: str,
        now: datetime,
    ) -> PaymentRecord:
        """A new payment attempt, not asked of the provider yet."""
        return cls(
            id=id,
            order_id=order_id,
            attempt=attempt,
            method=method,
            token=token,
            amount_cents=amount_cents,
            currency=currency,
            status=PaymentStatus.PENDING.value,
            provider_payment_id=None,
            checkout_url=None,
            provider_refund_id=None,
            refunded_cents=0,
            created_at=now,
            updated_at=now,
        )

    def row(self) -> dict[str, Any]:
        """The ``payments`` row of this attempt (its fields are the table's columns)."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class HoldRecord:
    id: int
    sku: str
    quantity: int
    state: str
    expires_at: datetime | None
    released_at: datetime | None


@dataclass(slots=True)
class HistoryRecord:
    status: str
    reason: str | None
    note: str | None
    at: datetime | None


@dataclass(slots=True)
class OrderRecord:
    """An order as one step sees it under its lock; :mod:`models.order_moves` keeps it current."""

    id: str
    account_id: str
    status: str
    reason: str | None
    total_cents: int
    currency: str
    hold_expires_at: datetime | None
    shipping_address: dict[str, Any] | None
    source: str
    created_at: datetime
    updated_at: datetime
    lines: list[LineRecord] = field(default_factory=list)
    payments: list[PaymentRecord] = field(default_factory=list)
    holds: list[HoldRecord] = field(default_factory=list)
    history: list[HistoryRecord] = field(default_factory=list)
    #: Documents of the order's returns, when read (:func:`models.returns.load_returns`): only a
    #: delivered order has any, so the steps' hot read leaves them out.
    returns: list[Any] = field(default_factory=list)

    @property
    def payment(self) -> PaymentRecord | None:
        """The latest payment attempt, if any."""
        return self.payments[-1] if self.payments else None


def _branch(kind: str, table: str, alias: str, columns: list[str], key: str, lock: bool) -> str:
    """One part of the UNION: the rows of ``table`` for the order, as ``kind`` and columns c1..c13."""
    values = [f"{alias}.{column}" for column in columns] + ["NULL"] * (_WIDTH - len(columns))
    selected = ", ".join(f"{value} AS c{n}" for n, value in enumerate(values, start=1))
    return (
        f"(SELECT '{kind}' AS k, {selected} FROM {table} {alias} WHERE {alias}.{key} = :order_id"
        f"{' FOR UPDATE' if lock else ''})"
    )


_WIDTH = 13
_ORDER = [
    "id",
    "account_id",
    "status",
    "reason",
    "total_cents",
    "currency",
    "hold_expires_at",
    "shipping_address",
    "source",
    "created_at",
    "updated_at",
]
_LINE = ["sku", "quantity", "unit_price_cents"]
_PAYMENT = [
    "id",
    "attempt",
    "method",
    "token",
    "amount_cents",
    "currency",
    "status",
    "provider_payment_id",
    "checkout_url",
    "provider_refund_id",
    "refunded_cents",
    "created_at",
    "updated_at",
]
_HOLD = ["id", "sku", "quantity", "state", "expires_at", "released_at"]
_HISTORY = ["id", "status", "reason", "note", "at"]


def _union(lock: bool) -> str:
    # The order's row comes first, so with ``lock`` its lock is taken before any child is read.
    # The children are locked too: a locking read always sees the latest committed rows.
    return "\nUNION ALL ".join(
        [
            _branch("o", "orders", "o", _ORDER, "id", lock),
            _branch("l", "order_lines", "l", _LINE, "order_id", lock),
            _branch("p", "payments", "p", _PAYMENT, "order_id", lock),
            _branch("r", "reserved_stock", "r", _HOLD, "order_id", lock),
            _branch("h", "order_history", "h", _HISTORY, "order_id", lock),
        ]
    )


_LOCK_ORDER = text(_union(lock=True))
_READ_ORDER = text(_union(lock=False))


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _record(rows: Iterable[Sequence[Any]]) -> OrderRecord | None:
    """The record of the UNION's rows (every value arrives as text: the parts' types differ)."""
    order: OrderRecord | None = None
    lines, payments, holds, history = [], [], [], []
    for row in rows:
        kind, c = row[0], row[1:]
        if kind == "o":
            order = OrderRecord(
                id=c[0],
                account_id=c[1],
                status=c[2],
                reason=c[3],
                total_cents=int(c[4]),
                currency=c[5],
                hold_expires_at=_time(c[6]),
                shipping_address=json.loads(c[7]) if isinstance(c[7], (str, bytes)) else c[7],
                source=c[8] or "api",
                created_at=_datetime(c[9]),  # NOT NULL columns
                updated_at=_datetime(c[10]),
            )
        elif kind == "l":
            lines.append(LineRecord(sku=c[0], quantity=int(c[1]), unit_price_cents=_int(c[2])))
        elif kind == "p":
            payments.append(
                PaymentRecord(
                    id=c[0],
                    order_id="",
                    attempt=int(c[1]),
                    method=c[2],
                    token=c[3],
                    amount_cents=int(c[4]),
                    currency=c[5],
                    status=c[6],
                    provider_payment_id=c[7],
                    checkout_url=c[8],
                    provider_refund_id=c[9],
                    refunded_cents=int(c[10]),
                    created_at=_time(c[11]),
                    updated_at=_time(c[12]),
                )
            )
        elif kind == "r":
            holds.append(
                HoldRecord(
                    id=int(c[0]),
                    sku=c[1],
                    quantity=int(c[2]),
                    state=c[3],
                    expires_at=_time(c[4]),
                    released_at=_time(c[5]),
                )
            )
        else:
            history.append((int(c[0]), HistoryRecord(status=c[1], reason=c[2], note=c[3], at=_time(c[4]))))
    if order is None:
        return None
    for payment in payments:
        payment.order_id = order.id
    order.lines = sorted(lines, key=lambda line: line.sku)
    order.payments = sorted(payments, key=lambda payment: payment.attempt)
    order.holds = sorted(holds, key=lambda hold: (hold.sku, hold.id))
    order.history = [entry for _, entry in sorted(history, key=lambda pair: pair[0])]
    return order


async def lock_order_record(connection: AsyncConnection, order_id: str) -> OrderRecord | None:
    """The whole order, its row locked until the transaction ends; None when there is no such order.

    Every step that changes an order takes this lock first, so two steps on one order (a payment
    result and an expiry, or one message delivered twice) run one after the other.
    """
    return _record((await connection.execute(_LOCK_ORDER, {"order_id": order_id})).all())


async def read_order_record(connection: AsyncConnection, order_id: str) -> OrderRecord | None:
    """The whole order as committed, without a lock; None when there is no such order."""
    return _record((await connection.execute(_READ_ORDER, {"order_id": order_id})).all())
