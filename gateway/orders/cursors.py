"""Opaque page cursors for lists ordered newest first: the (created_at, id) of the last entry shown.

A keyset cursor, not an offset: pages stay correct while orders are added, and while orders move
to the archive, since neither changes the position of an entry already shown. Clients must treat
the text as opaque; it is URL-safe base64 of a small JSON array, so it can change shape later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.http.paging import decode_cursor, encode_cursor

# Order ids are 32 lower-case hex digits; only such ids compare the same in Python and in MySQL.
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in a list ordered by (created_at, id), both descending."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        """The cursor as clients see it."""
        return encode_cursor([self.created_at.isoformat(timespec="microseconds"), self.id])

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor ``text`` encodes; a 400 problem when it is not one this API handed out."""
        return decode_cursor(text, cls._read)

    @classmethod
    def _read(cls, values: Any) -> Cursor:
        stamp, order_id = values
        if not isinstance(stamp, str) or not isinstance(order_id, str) or not _ID.fullmatch(order_id):
            raise ValueError("unexpected shape")
        created_at = datetime.fromisoformat(stamp)
        # Stored times are naive UTC; an aware one could not have come from us.
        if created_at.tzinfo is not None:
            raise ValueError("unexpected time zone")
        return cls(created_at, order_id)
