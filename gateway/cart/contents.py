"""Carts and wishlists: what a customer keeps, shown with the catalogue's current names and prices.

A cart line stores only a SKU and a quantity; prices are looked up whenever the cart is shown
and again, inside the order's transaction, when it is checked out (:mod:`gateway.cart.routes`). An
item that has left the catalogue stays in the cart, shown without name or price and flagged
``"unknown": true``; a checkout including it is rejected by ``reserve`` as ``unknown_item``.

The cart is never emptied here: when a checkout's order is placed, the worker takes its lines
out of the cart (:mod:`models.order_flow`), so a failed payment leaves the cart as it was.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.cart.schemas import MAX_CART_LINES, Cart, CartLine, Wishlist, WishlistEntry
from gateway.http.auth import customer_or_admin
from gateway.http.problems import CART_FULL, INVALID_TOKEN, Problem
from models.clock import isoformat, utcnow
from models.tables import Account, CartItem, Item, WishlistItem


def customer_account_id(request: web.Request) -> str:
    """The account behind a customer token: 401 without usable credentials, 403 for the admin token.

    The operator's token is valid but has no cart or wishlist of its own.
    """
    caller = customer_or_admin(request)
    if caller.account_id is None:
        raise Problem(403, "carts and wishlists belong to customers; the admin token has none")
    return caller.account_id


async def catalogue_sku(session: AsyncSession, sku: str | None) -> str:
    """The catalogue's spelling of ``sku`` (SKUs compare case-insensitively); 404 when unknown."""
    found = None if sku is None else await session.scalar(select(Item.sku).where(Item.sku == sku))
    if found is None:
        raise Problem(404, f"no item with sku {sku or ''!r}")
    return found


async def lock_account(session: AsyncSession, account_id: str) -> None:
    """Lock the customer's account row: changes of one customer's cart or wishlist go one at a time.

    401 when the token's account no longer exists.
    """
    found = await session.scalar(select(Account.id).where(Account.id == account_id).with_for_update())
    if found is None:
        raise Problem(
            INVALID_TOKEN,
            "the access token's account does not exist",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


def _available(item: Item) -> int:
    return item.stock.available if item.stock is not None else 0


# -- cart ------------------------------------------------------------------------------------


async def set_cart_line(session: AsyncSession, account_id: str, sku: str, quantity: int) -> None:
    """Put ``quantity`` of ``sku`` in the cart (replacing the line's quantity); 422 past the line limit.

    The caller holds the account lock (:func:`lock_account`), so the line count cannot race.
    """
    now = utcnow()
    line = await session.get(CartItem, (account_id, sku))
    if line is not None:
        line.quantity, line.updated_at = quantity, now
        return
    lines = (
        await session.scalar(
            select(func.count()).select_from(CartItem).where(CartItem.account_id == account_id)
        )
        or 0
    )
    if lines >= MAX_CART_LINES:
        raise Problem(CART_FULL, f"a cart holds at most {MAX_CART_LINES} different items; remove one first")
    session.add(CartItem(account_id=account_id, sku=sku, quantity=quantity, added_at=now, updated_at=now))


async def cart_document(session: AsyncSession, account_id: str) -> Cart:
    """The cart as ``GET /cart`` shows it, priced from the catalogue as it is now.

    ``total_cents`` adds the lines whose item is known; ``currency`` is theirs, null for an empty
    cart. Items priced in different currencies cannot be ordered together: the cart then shows
    ``total_cents`` and ``currency`` as null (a checkout would answer 422 currency-mismatch).
    """
    rows = (
        await session.execute(
            select(CartItem, Item)
            .outerjoin(Item, Item.sku == CartItem.sku)
            .where(CartItem.account_id == account_id)
            .order_by(CartItem.added_at, CartItem.sku)
        )
    ).all()
    items: list[CartLine] = []
    currencies: set[str] = set()
    total = 0
    for line, item in rows:
        if item is None:
            items.append(CartLine(line.sku, line.quantity, None, None, None, None, None, unknown=True))
            continue
        line_total = item.price_cents * line.quantity
        currencies.add(item.currency)
        total += line_total
        items.append(
            CartLine(
                item.sku,
                line.quantity,
                item.name,
                item.price_cents,
                item.currency,
                _available(item),
                line_total,
                unknown=False,
            )
        )
    if len(currencies) > 1:
        return Cart(items, total_cents=None, currency=None)
    return Cart(items, total_cents=total, currency=currencies.pop() if currencies else None)


# -- wishlist --------------------------------------------------------------------------------


async def wishlist_document(session: AsyncSession, account_id: str) -> Wishlist:
    """The wishlist as ``GET /wishlist`` shows it, oldest entry first, with current catalogue data."""
    rows = (
        await session.execute(
            select(WishlistItem, Item)
            .outerjoin(Item, Item.sku == WishlistItem.sku)
            .where(WishlistItem.account_id == account_id)
            .order_by(WishlistItem.added_at, WishlistItem.sku)
        )
    ).all()
    items: list[WishlistEntry] = []
    for entry, item in rows:
        if item is None:
            items.append(
                WishlistEntry(entry.sku, None, None, None, None, isoformat(entry.added_at), unknown=True)
            )
            continue
        items.append(
            WishlistEntry(
                item.sku,
                item.name,
                item.price_cents,
                item.currency,
                _available(item),
                isoformat(entry.added_at),
                unknown=False,
            )
        )
    return Wishlist(items)
