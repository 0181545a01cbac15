"""The order documents (:mod:`models.documents`), built from rows.

Kept apart from the handlers so that every producer of an order document (the API, live
updates, domain events) shows the same thing. Secrets never appear here: no payment token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from models import documents
from models.clock import isoformat
from models.tables import Order, Payment


def order_document(order: Order, *, archived: bool = False, returns: Any = None) -> documents.Order:
    """An order as ``GET /orders/{id}`` shows it; ``archived`` when it was moved to history.

    ``order`` must have its lines, payments and history loaded (the mapping loads them eagerly).
    Returns exist only for delivered orders and are read apart (:mod:`models.returns`): they are
    ``returns`` (documents) or, when not given, the ``returns`` the order record carries.
    """
    payment = order.payment
    payments = [payment_document(attempt) for attempt in order.payments]
    if returns is None:
        returns = getattr(order, "returns", ())
    return documents.Order(
        id=order.id,
        archived=archived,
        source=order.source or "api",
        status=order.status,
        reason=order.reason,
        items=[documents.OrderLine(line.sku, line.quantity, line.unit_price_cents) for line in order.lines],
        total_cents=order.total_cents,
        currency=order.currency,
        hold_expires_at=isoformat(order.hold_expires_at),
        shipping_address=order.shipping_address,
        payment=payments[-1] if payment is not None else None,
        payments=payments,
        refunded_cents=sum(attempt.refunded_cents for attempt in payments),
        returns=list(returns),
        history=[
            documents.HistoryEntry(entry.status, entry.reason, entry.note, isoformat(entry.at))
            for entry in order.history
        ],
        created_at=isoformat(order.created_at),
        updated_at=isoformat(order.updated_at),
    )


def order_json(order: Order, *, archived: bool = False) -> dict[str, Any]:
    """The order document as plain JSON values: the ``order`` of a domain event."""
    document: dict[str, Any] = msgspec.to_builtins(order_document(order, archived=archived))
    return document


def status_event(
    order_id: str, status: str, reason: str | None, at: datetime | None
) -> documents.StatusEvent:
    """One status of an order as live updates announce it; ``at`` is when it was entered."""
    return documents.StatusEvent(order_id, status, reason, isoformat(at))


def payment_document(payment: Payment) -> documents.Payment:
    """The customer-visible part of a payment attempt."""
    return documents.Payment(
        id=payment.id,
        attempt=payment.attempt,
        status=payment.status,
        method=payment.method,
        amount_cents=payment.amount_cents,
        refunded_cents=payment.refunded_cents or 0,
        currency=payment.currency,
        provider_payment_id=payment.provider_payment_id,
        checkout_url=payment.checkout_url,
    )
