"""Opaque page cursors for lists ordered newest first: the (created_at, id) of the last entry shown.

A keyset cursor, not an offset: pages stay correct while orders are added, and while orders move
to the archive, since neither changes the position of an entry already shown. Clients must treat
the text as opaque; it is URL-safe base64 of a small JSON array, so it can change shape later.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime

from gateway.http.problems import INVALID_CURSOR, Problem

# Far longer than any cursor we hand out; a longer one is refused before decoding.
MAX_CURSOR_LENGTH = 200
# Order ids are 32 lower-case hex digits; only such ids compare the same in Python and in MySQL.
_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in a list ordered by (created_at, id), both descending."""

    created_at: datetime
    id: str

    def encode(self) -> str:
        """The cursor as clients see it."""
        raw = json.dumps([self.created_at.isoformat(timespec="microseconds"), self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor ``text`` encodes; a 400 problem when it is not one this API handed out."""
        try:
            if len(text) > MAX_CURSOR_LENGTH:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            stamp, order_id = json.loads(raw.decode("utf-8"))
            if not isinstance(stamp, str) or not isinstance(order_id, str) or not _ID.fullmatch(order_id):
                raise ValueError("unexpected shape")
            created_at = datetime.fromisoformat(stamp)
            # Stored times are naive UTC; an aware one could not have come from us.
            if created_at.tzinfo is not None:
                raise ValueError("unexpected time zone")
        except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
            raise Problem(
                INVALID_CURSOR,
                "cursor: not a cursor this API handed out; start again without one",
                field="cursor",
            ) from exc
        return cls(created_at, order_id)
