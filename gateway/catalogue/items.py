"""A catalogue item as the API shows it, built from its row."""

from __future__ import annotations

from gateway.catalogue.schemas import Item as ItemDocument
from models.tables import Item


def item_document(item: Item, available: int) -> ItemDocument:
    """``item`` with ``available``, the quantity that can be ordered now."""
    return ItemDocument(
        sku=item.sku,
        name=item.name,
        price_cents=item.price_cents,
        currency=item.currency,
        upc=item.upc,
        picture_urls=item.picture_urls or [],
        attributes=item.attributes or {},
        available=available,
    )
