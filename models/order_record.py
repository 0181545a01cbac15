"""An order with its lines, payments, holds and history, read in one statement.

The steps on an order's hot path (reserve, pay, settle) read the whole order under its row lock
and then change it with a few targeted statements (:mod:`models.order_moves`). Loading it through
the ORM took five SELECTs (the row, then one per relationship) and most of a worker's CPU; here
one SELECT returns the row with its children aggregated as JSON arrays by MariaDB/MySQL.

The record has the attributes :func:`models.views.order_json` and the state machine read, so
the API document and domain events look the same whichever way an order was loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.tables import Timestamp


def _time(value: str | None) -> datetime | None:
    """A DATETIME(6) value as JSON_OBJECT renders it (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    return datetime.fromisoformat(value) if value else None


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
    created_at: datetime | None
    updated_at: datetime | None


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

    @property
    def payment(self) -> PaymentRecord | None:
        """The latest payment attempt, if any."""
        return self.payments[-1] if self.payments else None


_SELECT = """
SELECT o.id, o.account_id, o.status, o.reason, o.total_cents, o.currency, o.hold_expires_at,
       o.shipping_address, o.source, o.created_at, o.updated_at,
       (SELECT JSON_ARRAYAGG(JSON_OBJECT('sku', l.sku, 'quantity', l.quantity,
                                         'unit_price_cents', l.unit_price_cents) ORDER BY l.sku)
          FROM order_lines l WHERE l.order_id = o.id) AS lines_json,
       (SELECT JSON_ARRAYAGG(JSON_OBJECT('id', p.id, 'attempt', p.attempt, 'method', p.method,
                                         'token', p.token, 'amount_cents', p.amount_cents,
                                         'currency', p.currency, 'status', p.status,
                                         'provider_payment_id', p.provider_payment_id,
                                         'checkout_url', p.checkout_url,
                                         'provider_refund_id', p.provider_refund_id,
                                         'created_at', p.created_at, 'updated_at', p.updated_at)
                             ORDER BY p.attempt)
          FROM payments p WHERE p.order_id = o.id) AS payments_json,
       (SELECT JSON_ARRAYAGG(JSON_OBJECT('id', r.id, 'sku', r.sku, 'quantity', r.quantity, 'state', r.state,
                                         'expires_at', r.expires_at, 'released_at', r.released_at)
                             ORDER BY r.sku, r.id)
          FROM reserved_stock r WHERE r.order_id = o.id) AS holds_json,
       (SELECT JSON_ARRAYAGG(JSON_OBJECT('status', h.status, 'reason', h.reason, 'note', h.note, 'at', h.at)
                             ORDER BY h.id)
          FROM order_history h WHERE h.order_id = o.id) AS history_json
  FROM orders o WHERE o.id = :order_id
"""
_COLUMNS = {"shipping_address": JSON, "lines_json": JSON, "payments_json": JSON, "holds_json": JSON, "history_json": JSON,
            "hold_expires_at": Timestamp, "created_at": Timestamp, "updated_at": Timestamp}
_LOCK_ORDER = text(_SELECT + " FOR UPDATE").columns(**_COLUMNS)
_READ_ORDER = text(_SELECT).columns(**_COLUMNS)


def _record(row: Any) -> OrderRecord:
    return OrderRecord(
        id=row.id, account_id=row.account_id, status=row.status, reason=row.reason,
        total_cents=row.total_cents, currency=row.currency, hold_expires_at=row.hold_expires_at,
        shipping_address=row.shipping_address, source=row.source or "api",
        created_at=row.created_at, updated_at=row.updated_at,
        lines=[LineRecord(**line) for line in row.lines_json or ()],
        payments=[PaymentRecord(order_id=row.id, **{**p, "created_at": _time(p["created_at"]),
                                                   "updated_at": _time(p["updated_at"])})
                  for p in row.payments_json or ()],
        holds=[HoldRecord(**{**h, "expires_at": _time(h["expires_at"]), "released_at": _time(h["released_at"])})
               for h in row.holds_json or ()],
        history=[HistoryRecord(status=h["status"], reason=h["reason"], note=h["note"], at=_time(h["at"]))
                 for h in row.history_json or ()],
    )


async def lock_order_record(connection: AsyncConnection, order_id: str) -> OrderRecord | None:
    """The whole order, its row locked until the transaction ends; None when there is no such order.

    Every step that changes an order takes this lock first, so two steps on one order (a payment
    result and an expiry, or one message delivered twice) run one after the other.
    """
    row = (await connection.execute(_LOCK_ORDER, {"order_id": order_id})).first()
    return _record(row) if row is not None else None


async def read_order_record(connection: AsyncConnection, order_id: str) -> OrderRecord | None:
    """The whole order as committed, without a lock; None when there is no such order."""
    row = (await connection.execute(_READ_ORDER, {"order_id": order_id})).first()
    return _record(row) if row is not None else None
