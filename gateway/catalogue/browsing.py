"""Browsing the catalogue: ``GET /items`` pages through items by SKU, optionally filtered by a search term.

Pages are cut by keyset, not offset: a cursor names the last SKU shown and the next page starts
after it, so items added or removed while a client pages neither repeat nor go missing (other
than the added or removed ones). SKUs are the primary key and compare case-insensitively in the
database; ordering and the "after" comparison both happen there, so they agree with each other.

The search term matches anywhere in the name or the SKU, ignoring case. It is matched
literally: ``%`` and ``_`` in it are escaped, so "50%" finds "50% off" and not "500 pens".
A search cannot use an index (a substring can start anywhere), so every page scans the items
past the cursor until it has found ``limit + 1`` matches: fine for a catalogue of thousands of
items, a job for a full-text index beyond that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.catalogue.items import item_document
from gateway.catalogue.schemas import ItemPage, Receipt, Receipts
from gateway.catalogue.skus import SKU_SHAPE
from gateway.http.paging import decode_cursor, encode_cursor
from models.clock import isoformat
from models.tables import Item, StockReceipt


@dataclass(frozen=True)
class SkuCursor:
    """A position in the catalogue ordered by SKU: the last SKU of the page shown."""

    sku: str

    def encode(self) -> str:
        """The cursor as clients see it."""
        return encode_cursor(["sku", self.sku])

    @classmethod
    def decode(cls, text: str) -> SkuCursor:
        """The cursor ``text`` encodes; a 400 problem when it is not one this API handed out."""
        return decode_cursor(text, cls._read)

    @classmethod
    def _read(cls, values: Any) -> SkuCursor:
        kind, sku = values
        if kind != "sku" or not isinstance(sku, str) or not SKU_SHAPE.fullmatch(sku):
            raise ValueError("unexpected shape")
        return cls(sku)


async def list_items(
    session: AsyncSession, *, search: str | None, limit: int, after: SkuCursor | None
) -> ItemPage:
    """One page of catalogue items in SKU order, with their available quantity."""
    query = select(Item)
    if search:
        # autoescape: '%', '_' and the escape character itself are matched literally.
        query = query.where(
            or_(Item.name.icontains(search, autoescape=True), Item.sku.icontains(search, autoescape=True))
        )
    if after is not None:
        query = query.where(Item.sku > after.sku)
    items = list((await session.scalars(query.order_by(Item.sku).limit(limit + 1))).all())
    more = len(items) > limit
    items = items[:limit]
    return ItemPage(
        items=[item_document(item, item.stock.available if item.stock is not None else 0) for item in items],
        next_cursor=SkuCursor(items[-1].sku).encode() if more else None,
    )


async def stock_receipts(session: AsyncSession, sku: str) -> Receipts:
    """Every stock receipt of ``sku``, newest first."""
    rows = (
        await session.execute(
            select(StockReceipt.quantity, StockReceipt.received_at)
            .where(StockReceipt.sku == sku)
            .order_by(StockReceipt.received_at.desc(), StockReceipt.id.desc())
        )
    ).all()
    return Receipts([Receipt(row.quantity, isoformat(row.received_at)) for row in rows])
