"""Reading returns as the documents the API and domain events show (:class:`models.documents.Return`).

A return and its lines live in the hot tables while their order does and move to the archive
tables with it, in the same transaction (:data:`models.tables.ARCHIVED_CHILDREN`). Readers try
the hot tables first and the archive second: a return only ever moves hot -> archive, so a miss
in one followed by a read of the other cannot lose one that moved in between.

Kept apart from :mod:`models.returns` (the moves) so that :mod:`models.refunds`, which those moves
use, can show an order's returns in the events it announces without importing it back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select

from models import documents
from models.clock import isoformat
from models.tables import Return, ReturnLine, return_lines_archive, returns_archive, table_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_HOT = (table_of(Return), table_of(ReturnLine))
_ARCHIVE = (returns_archive, return_lines_archive)


def _tables(archived: bool) -> tuple[Table, Table]:
    return _ARCHIVE if archived else _HOT


def _document(row: Any, lines: list[documents.ReturnLine]) -> documents.Return:
    return documents.Return(
        id=row.id,
        order_id=row.order_id,
        status=row.status,
        items=lines,
        reason=row.reason,
        rejection_reason=row.rejection_reason,
        restocked=None if row.restocked is None else bool(row.restocked),
        refund_id=row.refund_id,
        created_at=isoformat(row.created_at),
        updated_at=isoformat(row.updated_at),
    )


async def _read(
    connection: AsyncConnection,
    archived: bool,
    *,
    order_ids: Iterable[str] = (),
    return_id: str | None = None,
) -> list[documents.Return]:
    """The returns of ``order_ids`` (or the one ``return_id``), oldest first, with their lines."""
    returns, lines = _tables(archived)
    if return_id is not None:
        which, line_filter = returns.c.id == return_id, lines.c.return_id == return_id
    else:
        ids = sorted(set(order_ids))
        if not ids:
            return []
        which, line_filter = returns.c.order_id.in_(ids), lines.c.order_id.in_(ids)
    rows = (
        await connection.execute(select(returns).where(which).order_by(returns.c.created_at, returns.c.id))
    ).all()
    if not rows:
        return []
    by_return: dict[str, list[documents.ReturnLine]] = defaultdict(list)
    for line in await connection.execute(select(lines).where(line_filter).order_by(lines.c.sku)):
        by_return[line.return_id].append(
            documents.ReturnLine(
                sku=line.sku, quantity=int(line.quantity), unit_price_cents=int(line.unit_price_cents)
            )
        )
    return [_document(row, by_return[row.id]) for row in rows]


async def load_returns(connection: AsyncConnection, order_id: str) -> list[documents.Return]:
    """The returns of a hot (not archived) order, oldest first."""
    return await _read(connection, False, order_ids=[order_id])


async def load_archived_returns(connection: AsyncConnection, order_id: str) -> list[documents.Return]:
    """The returns of an archived order, oldest first, read from the archive tables."""
    return await _read(connection, True, order_ids=[order_id])


async def returns_of_orders(
    connection: AsyncConnection, order_ids: Iterable[str], *, archived: bool = False
) -> dict[str, list[documents.Return]]:
    """Order id -> its returns, oldest first, for several orders in two statements (a page of a list).

    Orders without a return are left out of the mapping.
    """
    found: dict[str, list[documents.Return]] = defaultdict(list)
    for document in await _read(connection, archived, order_ids=order_ids):
        found[document.order_id].append(document)
    return dict(found)


async def find_return(connection: AsyncConnection, return_id: str) -> tuple[documents.Return, bool] | None:
    """The return ``return_id`` and whether it was archived; None when there is none."""
    for archived in (False, True):
        found = await _read(connection, archived, return_id=return_id)
        if found:
            return found[0], archived
    return None
