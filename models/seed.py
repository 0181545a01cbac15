"""A small demo catalogue, so a fresh fleet has something to sell (idempotent)."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import select

from config import settings_or_exit
from models.db import create_engine, create_sessionmaker
from models.tables import Item, Stock, StockReceipt

DEMO_ITEMS = [
    # sku, name, price_cents, initial stock
    ("TSHIRT-BLUE-M", "Blue T-shirt, size M", 1999, 100),
    ("MUG-LOGO", "Mug with logo", 1250, 50),
    ("SNEAKER-42", "Running sneaker, EU 42", 8900, 20),
    ("POSTER-LTD", "Limited poster (flash sale)", 4900, 5),
]


async def seed(database_url: str) -> list[str]:
    """Insert the demo items that are missing, with their initial stock; returns the new SKUs."""
    engine = create_engine(database_url, pool_size=1)
    created: list[str] = []
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            existing = set((await session.scalars(select(Item.sku))).all())
            for sku, name, price, quantity in DEMO_ITEMS:
                if sku in existing:
                    continue
                session.add(Item(sku=sku, name=name, price_cents=price, currency="USD"))
                session.add(Stock(sku=sku, available=quantity, received=quantity))
                session.add(StockReceipt(sku=sku, quantity=quantity))
                created.append(sku)
    finally:
        await engine.dispose()
    return created


def main() -> int:
    """Console entry point: ``orders-seed``."""
    settings = settings_or_exit()
    created = asyncio.run(seed(settings.database_url))
    print(f"demo catalogue: {len(created)} item(s) added" + (f" ({', '.join(created)})" if created else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
