"""A customer's ``Idempotency-Key`` filed with what its first request made (``idempotency_keys``).

The endpoints that change an order under its lock (a new payment method, a return) read the key's
earlier use in the same transaction, answer a repeat from it, and file a first use beside the
change it made; a refused request files nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.http.db_errors import is_duplicate_key
from models.clock import utcnow
from models.tables import IdempotencyKey, table_of

_keys = table_of(IdempotencyKey)
_EARLIER_USE = select(_keys.c.order_id, _keys.c.request_hash, _keys.c.result_id).where(
    _keys.c.account_id == bindparam("account_id"),
    _keys.c.key == bindparam("key"),
    _keys.c.scope == bindparam("scope"),
)
_INSERT = insert(_keys)


@dataclass(frozen=True)
class KeyUse:
    """One request's key: whose, for which endpoint (``scope``), on which order, with which body."""

    account_id: str
    key: str
    scope: str
    order_id: str
    request_hash: str

    async def earlier(self, connection: AsyncConnection) -> Any:
        """The key's earlier use (``order_id``, ``request_hash``, ``result_id``), or None."""
        params = {"account_id": self.account_id, "key": self.key, "scope": self.scope}
        return (await connection.execute(_EARLIER_USE, params)).first()

    def repeats(self, earlier: Any) -> bool:
        """Whether ``earlier`` was this very request (same order, same body)."""
        return bool(earlier.order_id == self.order_id and earlier.request_hash == self.request_hash)

    async def record(self, connection: AsyncConnection, result_id: str) -> bool:
        """File the key with the order and ``result_id``; False when the same key was just filed by
        another request (for another order of the same customer: each order's lock is its own, so
        only the key's primary key sees the two meet)."""
        try:
            await connection.execute(
                _INSERT,
                {
                    "account_id": self.account_id,
                    "key": self.key,
                    "scope": self.scope,
                    "request_hash": self.request_hash,
                    "order_id": self.order_id,
                    "result_id": result_id,
                    "created_at": utcnow(),
                },
            )
        except IntegrityError as exc:
            if is_duplicate_key(exc):
                return False
            raise
        return True
