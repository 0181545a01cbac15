"""The lines of a customer's cart as an order's lines, read when the cart is checked out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gateway.http.problems import EMPTY_CART, Problem
from models.tables import CartItem


async def checkout_lines(session: AsyncSession | AsyncConnection, account_id: str) -> list[dict[str, Any]]:
    """The cart as order lines (``{sku, quantity}``), for a checkout; 422 when the cart is empty."""
    rows = (
        await session.execute(
            select(CartItem.sku, CartItem.quantity)
            .where(CartItem.account_id == account_id)
            .order_by(CartItem.sku)
        )
    ).all()
    if not rows:
        raise Problem(
            EMPTY_CART, "the cart is empty; put items in it (PUT /cart/items/{sku}) before checking out"
        )
    return [{"sku": row.sku, "quantity": row.quantity} for row in rows]
