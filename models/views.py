"""The JSON shapes of orders, payments, accounts and items (docs/contract.md, "HTTP API"), built from rows.

Kept apart from the handlers so that every producer of an order document (the API, live
updates, domain events) shows the same thing. Secrets never appear here: no password hash, no
payment token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.clock import isoformat
from models.tables import Account, Item, Order, Payment


def order_json(order: Order, *, archived: bool = False) -> dict[str, Any]:
    """An order as ``GET /orders/{id}`` shows it; ``archived`` when it was moved to history.

    ``order`` must have its lines, payments and history loaded (the mapping loads them eagerly).
    """
    return {
        "id": order.id,
        "archived": archived,
        "source": order.source or "api",
        "status": order.status,
        "reason": order.reason,
        "items": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price_cents": line.unit_price_cents}
            for line in order.lines
        ],
        "total_cents": order.total_cents,
        "currency": order.currency,
        "hold_expires_at": isoformat(order.hold_expires_at),
        "payment": payment_json(order.payment) if order.payment is not None else None,
        "history": [
            {"status": entry.status, "reason": entry.reason, "note": entry.note, "at": isoformat(entry.at)}
            for entry in order.history
        ],
        "created_at": isoformat(order.created_at),
        "updated_at": isoformat(order.updated_at),
    }


def status_json(order_id: str, status: str, reason: str | None, at: datetime | None) -> dict[str, Any]:
    """One status of an order as live updates announce it; ``at`` is when it was entered."""
    return {"id": order_id, "status": status, "reason": reason, "at": isoformat(at)}


def payment_json(payment: Payment) -> dict[str, Any]:
    """The customer-visible part of a payment attempt."""
    return {
        "id": payment.id,
        "status": payment.status,
        "method": payment.method,
        "checkout_url": payment.checkout_url,
    }


def account_json(account: Account) -> dict[str, Any]:
    """An account as its owner sees it."""
    return {
        "id": account.id,
        "email": account.email,
        "name": account.name,
        "shipping_address": account.shipping_address,
        "billing_address": account.billing_address,
        "created_at": isoformat(account.created_at),
        "updated_at": isoformat(account.updated_at),
    }


def item_json(item: Item, available: int) -> dict[str, Any]:
    """A catalogue item with the quantity that can be ordered now."""
    return {
        "sku": item.sku,
        "name": item.name,
        "price_cents": item.price_cents,
        "currency": item.currency,
        "upc": item.upc,
        "picture_urls": item.picture_urls or [],
        "attributes": item.attributes or {},
        "available": available,
    }
