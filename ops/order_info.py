"""``orders-admin order ORDER_ID``: everything the database knows about one order, hot or archived."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.archive import load_archived_order
from models.tables import (
    Notification,
    Order,
    OutboxMessage,
    Refund,
    Return,
    ReturnLine,
    orders_archive,
    refunds_archive,
    return_lines_archive,
    returns_archive,
    table_of,
)
from ops.common import OpsError, format_kwargs, table, when

_REFUNDS = {False: table_of(Refund), True: refunds_archive}
_RETURNS = {False: table_of(Return), True: returns_archive}
_RETURN_LINES = {False: table_of(ReturnLine), True: return_lines_archive}


async def _refunds(session: AsyncSession, order_id: str, archived: bool) -> list[dict[str, Any]]:
    refunds = _REFUNDS[archived]
    rows = await session.execute(
        select(refunds).where(refunds.c.order_id == order_id).order_by(refunds.c.created_at, refunds.c.id)
    )
    return [
        {
            "id": row.id,
            "payment_id": row.payment_id,
            "amount_cents": row.amount_cents,
            "status": row.status,
            "reason": row.reason,
            "return_id": row.return_id,
            "provider_refund_id": row.provider_refund_id,
            "created_at": when(row.created_at),
            "updated_at": when(row.updated_at),
        }
        for row in rows
    ]


async def _returns(session: AsyncSession, order_id: str, archived: bool) -> list[dict[str, Any]]:
    returns, lines = _RETURNS[archived], _RETURN_LINES[archived]
    items: dict[str, list[str]] = {}
    for line in await session.execute(
        select(lines).where(lines.c.order_id == order_id).order_by(lines.c.return_id, lines.c.sku)
    ):
        items.setdefault(line.return_id, []).append(f"{line.quantity} x {line.sku} @ {line.unit_price_cents}")
    rows = await session.execute(
        select(returns).where(returns.c.order_id == order_id).order_by(returns.c.created_at, returns.c.id)
    )
    return [
        {
            "id": row.id,
            "status": row.status,
            "items": items.get(row.id, []),
            "reason": row.reason,
            "rejection_reason": row.rejection_reason,
            "restocked": row.restocked,
            "refund_id": row.refund_id,
            "created_at": when(row.created_at),
            "updated_at": when(row.updated_at),
        }
        for row in rows
    ]


async def order_document(sessionmaker: async_sessionmaker[AsyncSession], order_id: str) -> dict[str, Any]:
    """The order with history, payments, holds, outbox rows and notifications, as one JSON-able dict.

    Raises :class:`OpsError` when no order (hot or archived) has this id.
    """
    async with sessionmaker() as session:
        order = await session.scalar(select(Order).where(Order.id == order_id))
        archived_at = None
        if order is None:
            order = await load_archived_order(session, order_id)
            if order is None:
                raise OpsError(f"no order {order_id}")
            archived_at = await session.scalar(
                select(orders_archive.c.archived_at).where(orders_archive.c.id == order_id)
            )
        outbox = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.order_id == order_id)
                .order_by(OutboxMessage.created_at, OutboxMessage.id)
            )
        ).all()
        notifications = (
            await session.scalars(
                select(Notification).where(Notification.order_id == order_id).order_by(Notification.id)
            )
        ).all()
        refunds = await _refunds(session, order_id, archived_at is not None)
        returns = await _returns(session, order_id, archived_at is not None)
    return {
        "id": order.id,
        "archived": archived_at is not None,
        "archived_at": when(archived_at),
        "status": order.status,
        "reason": order.reason,
        "account_id": order.account_id,
        "total_cents": order.total_cents,
        "currency": order.currency,
        "hold_expires_at": when(order.hold_expires_at),
        "created_at": when(order.created_at),
        "updated_at": when(order.updated_at),
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price_cents": line.unit_price_cents}
            for line in order.lines
        ],
        "history": [
            {"status": entry.status, "reason": entry.reason, "note": entry.note, "at": when(entry.at)}
            for entry in order.history
        ],
        # The payment token is a secret of the customer's: never shown.
        "payments": [
            {
                "id": payment.id,
                "attempt": payment.attempt,
                "method": payment.method,
                "status": payment.status,
                "amount_cents": payment.amount_cents,
                "refunded_cents": payment.refunded_cents,
                "currency": payment.currency,
                "provider_payment_id": payment.provider_payment_id,
                "provider_refund_id": payment.provider_refund_id,
                "checkout_url": payment.checkout_url,
                "created_at": when(payment.created_at),
                "updated_at": when(payment.updated_at),
            }
            for payment in order.payments
        ],
        "refunds": refunds,
        "returns": returns,
        "holds": [
            {
                "sku": hold.sku,
                "quantity": hold.quantity,
                "state": hold.state,
                "expires_at": when(hold.expires_at),
                "released_at": when(hold.released_at),
            }
            for hold in order.holds
        ],
        "outbox": [
            {
                "id": message.id,
                "actor": message.actor_name,
                "queue": message.queue_name,
                "exchange": message.exchange,
                "routing_key": message.routing_key,
                "kwargs": message.kwargs,
                "delay_ms": message.delay_ms,
                "created_at": when(message.created_at),
                "sent_at": when(message.sent_at),
                "attempts": message.attempts,
            }
            for message in outbox
        ],
        "notifications": [
            {
                "event": note.event,
                "recipient": note.recipient,
                "status": note.status,
                "attempts": note.attempts,
                "last_error": note.last_error,
                "created_at": when(note.created_at),
                "sent_at": when(note.sent_at),
            }
            for note in notifications
        ],
    }


def _outbox_target(message: dict[str, Any]) -> str:
    if message["exchange"]:
        return f"event {message['exchange']}/{message['routing_key']}"
    extra = {k: v for k, v in (message["kwargs"] or {}).items() if k != "order_id"}
    target = f"step {message['actor']}"
    if message["queue"] and message["queue"] != message["actor"]:
        target += f" on {message['queue']}"
    return target + (f" ({format_kwargs(extra)})" if extra else "")


def render_order(doc: dict[str, Any]) -> str:
    """The human-readable report of :func:`order_document`."""
    status = doc["status"] + (f" ({doc['reason']})" if doc["reason"] else "")
    lines = [f"order {doc['id']}" + (f"  [archived {doc['archived_at']}]" if doc["archived"] else "")]
    lines += [
        f"  status:      {status}",
        f"  account:     {doc['account_id']}",
        f"  total:       {doc['total_cents']} {doc['currency']} (minor units)",
        f"  created:     {doc['created_at']}",
        f"  updated:     {doc['updated_at']}",
        f"  hold until:  {doc['hold_expires_at'] or '-'}",
    ]

    def section(title: str, headers: list[str], rows: list[list[Any]]) -> None:
        lines.append("")
        lines.append(f"{title} ({len(rows)}):" if rows else f"{title}: none")
        if rows:
            lines.extend(table(headers, rows))

    section(
        "lines",
        ["sku", "qty", "unit_price_cents"],
        [[x["sku"], x["quantity"], x["unit_price_cents"]] for x in doc["lines"]],
    )
    section(
        "history",
        ["at", "status", "reason", "note"],
        [[x["at"], x["status"], x["reason"], x["note"]] for x in doc["history"]],
    )
    section(
        "payments",
        [
            "id",
            "attempt",
            "method",
            "status",
            "amount",
            "refunded",
            "provider_payment_id",
            "checkout_url",
        ],
        [
            [
                x["id"],
                x["attempt"],
                x["method"],
                x["status"],
                x["amount_cents"],
                x["refunded_cents"],
                x["provider_payment_id"],
                x["checkout_url"],
            ]
            for x in doc["payments"]
        ],
    )
    section(
        "refunds",
        ["id", "payment_id", "amount", "status", "reason", "return_id", "provider_refund_id", "created_at"],
        [
            [
                x["id"],
                x["payment_id"],
                x["amount_cents"],
                x["status"],
                x["reason"],
                x["return_id"],
                x["provider_refund_id"],
                x["created_at"],
            ]
            for x in doc["refunds"]
        ],
    )
    section(
        "returns",
        ["id", "status", "items", "restocked", "refund_id", "reason", "created_at"],
        [
            [
                x["id"],
                x["status"],
                "; ".join(x["items"]),
                x["restocked"],
                x["refund_id"],
                x["rejection_reason"] or x["reason"],
                x["created_at"],
            ]
            for x in doc["returns"]
        ],
    )
    if "at_provider" in doc:
        section(
            "at the provider",
            ["kind", "id", "provider_id", "ours", "provider", "amount", "currency", "note"],
            [
                [
                    x["kind"],
                    x["id"],
                    x["provider_id"],
                    x["ours"],
                    x["status"],
                    x["amount_cents"],
                    x["currency"],
                    x["note"],
                ]
                for x in doc["at_provider"]
            ],
        )
    section(
        "holds",
        ["sku", "qty", "state", "expires_at", "released_at"],
        [[x["sku"], x["quantity"], x["state"], x["expires_at"], x["released_at"]] for x in doc["holds"]],
    )
    section(
        "outbox",
        ["id", "message", "created_at", "sent_at", "attempts"],
        [
            [x["id"], _outbox_target(x), x["created_at"], x["sent_at"] or "UNSENT", x["attempts"]]
            for x in doc["outbox"]
        ],
    )
    section(
        "notifications",
        ["event", "status", "attempts", "sent_at", "last_error"],
        [
            [x["event"], x["status"], x["attempts"], x["sent_at"], x["last_error"]]
            for x in doc["notifications"]
        ],
    )
    return "\n".join(lines)
