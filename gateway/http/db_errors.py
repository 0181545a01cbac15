"""Telling database errors apart by their MySQL/MariaDB error code.

The DB-API maps several unrelated conditions onto one exception class (a CHECK failure and a
deadlock are both ``OperationalError`` in PyMySQL), so the gateway decides by code.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from models.db import DUPLICATE_KEY, error_code, is_duplicate_key

__all__ = ["DUPLICATE_KEY", "OUT_OF_RANGE", "error_code", "is_deadlock", "is_duplicate_key", "is_transient"]

OUT_OF_RANGE = 1264
LOCK_WAIT_TIMEOUT = 1205
DEADLOCK = 1213
# Server gone, restarting, killed our connection or refusing more: nothing wrong with the request.
_CONNECTION_LOST = frozenset({1040, 1053, 1927, 2003, 2006, 2013, 2055})


def is_transient(exc: DBAPIError) -> bool:
    """Contention or a lost connection: the same request may well succeed when retried."""
    code = error_code(exc)
    return (
        code in (DEADLOCK, LOCK_WAIT_TIMEOUT) or code in _CONNECTION_LOST or bool(exc.connection_invalidated)
    )


def is_deadlock(exc: DBAPIError) -> bool:
    """InnoDB chose this transaction as a deadlock victim and rolled it back."""
    return error_code(exc) == DEADLOCK
