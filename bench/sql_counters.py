"""SQL statements per order, from MariaDB's own counters.

``SHOW GLOBAL STATUS`` is read at the start and the end of the measured window on a connection
of its own (autocommit, so it adds no COMMIT or ROLLBACK, and SHOW statements count only in
``Com_show_*``). The difference, less what the bench itself sent in between, divided by the
orders placed in the window, is what the fleet asked of the database per order:

- statements: SELECT and DML (``Com_select``, ``Com_insert``, ``Com_insert_select``,
  ``Com_update``, ``Com_update_multi``, ``Com_delete``, ``Com_delete_multi``, ``Com_replace``,
  ``Com_replace_select``), each also on its own;
- transactions: ``Com_commit`` and ``Com_rollback`` apart (SQLAlchemy begins implicitly, so
  ``Com_begin`` stays 0, and a connection handed back to its pool is rolled back);
- ``Questions``: everything the clients sent, SET and SHOW included.

The bench's own statements are counted by :class:`StatementTally` on its engine (the order
status checks of :class:`bench.e2e.Completion`) and subtracted. The counters are the server's,
not one database's: another client's statements in the window count too, so the connections to
other databases are listed next to the figures (``other_connections``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import aiomysql
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

SELECT_AND_DML = (
    "select",
    "insert",
    "insert_select",
    "update",
    "update_multi",
    "delete",
    "delete_multi",
    "replace",
    "replace_select",
)
TRANSACTIONS = ("commit", "rollback", "begin")
#: The statements the table breaks the total into.
MAIN_KINDS = ("select", "insert", "update", "delete")


def statement_kind(statement: str) -> str:
    """The ``Com_`` counter a statement lands in, as far as its first word tells (``select``, ...)."""
    words = statement.lstrip(" (\n\t").split(None, 1)
    return words[0].lower() if words else ""


@dataclass
class StatementTally:
    """What one engine sends, by counter: statements by their first word, a ping per pool check-out
    (``Com_admin_commands``), a rollback per check-in."""

    counts: Counter = field(default_factory=Counter)

    def attach(self, engine: AsyncEngine) -> StatementTally:
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "before_cursor_execute")
        def _statement(conn, cursor, statement, parameters, context, executemany):
            self.counts[statement_kind(statement)] += 1
            self.counts["questions"] += 1

        @event.listens_for(sync_engine, "commit")
        def _commit(conn):
            self.counts["commit"] += 1
            self.counts["questions"] += 1

        if getattr(sync_engine.pool, "_pre_ping", False):

            @event.listens_for(sync_engine.pool, "checkout")
            def _checkout(dbapi_connection, record, proxy):
                self.counts["admin_commands"] += 1  # the pre-ping (COM_PING)

        @event.listens_for(sync_engine.pool, "checkin")
        def _checkin(dbapi_connection, record):
            # A connection back in the pool has been rolled back once (by its Connection or the pool).
            self.counts["rollback"] += 1
            self.counts["questions"] += 1

        return self

    def snapshot(self) -> Counter:
        return Counter(self.counts)


class GlobalStatus:
    """MariaDB's ``Com_%`` and ``Questions`` counters, read on a connection of the bench's own."""

    def __init__(self, database_url: str):
        self.url = make_url(database_url)
        self.connection: aiomysql.Connection | None = None

    async def __aenter__(self) -> GlobalStatus:
        self.connection = await aiomysql.connect(
            host=self.url.host or "127.0.0.1",
            port=self.url.port or 3306,
            user=self.url.username or "root",
            password=self.url.password or "",
            autocommit=True,
            connect_timeout=5,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    async def read(self) -> dict[str, int]:
        """The counters now: ``select``, ``insert``, ..., ``commit``, ``rollback``, ``questions``."""
        async with self.connection.cursor() as cursor:
            await cursor.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Com\\_%' OR Variable_name = 'Questions'"
            )
            rows = await cursor.fetchall()
        counters = {}
        for name, value in rows:
            key = name.lower().removeprefix("com_")
            try:
                counters[key] = int(value)
            except (TypeError, ValueError):
                continue
        return counters

    async def other_connections(self, own_database: str) -> list[dict[str, object]]:
        """Connections to another database than the fleet's (their statements count too)."""
        async with self.connection.cursor() as cursor:
            await cursor.execute("SHOW FULL PROCESSLIST")
            rows = await cursor.fetchall()
        others = []
        for row in rows:
            database = row[3]
            if database and database != own_database:
                others.append({"id": row[0], "db": database, "command": row[4]})
        return others


@dataclass
class SqlWindow:
    """The counters around a window, and the bench's own statements in it."""

    status: GlobalStatus
    tally: StatementTally | None
    database: str
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    own_before: Counter = field(default_factory=Counter)
    own_after: Counter = field(default_factory=Counter)
    others: dict[int, dict[str, object]] = field(default_factory=dict)

    async def begin(self) -> None:
        for other in await self.status.other_connections(self.database):
            self.others[int(other["id"])] = other
        self.own_before = self.tally.snapshot() if self.tally else Counter()
        self.before = await self.status.read()

    async def end(self) -> None:
        self.after = await self.status.read()
        self.own_after = self.tally.snapshot() if self.tally else Counter()
        for other in await self.status.other_connections(self.database):
            self.others[int(other["id"])] = other

    def result(self, orders: int) -> dict[str, object]:
        """The window's counts (the fleet's alone) and the same per order."""
        own = self.own_after - self.own_before
        counted = {}
        for key in set(self.after) | set(self.before):
            delta = self.after.get(key, 0) - self.before.get(key, 0) - own.get(key, 0)
            if key in ("questions", "show_status"):
                delta -= 1  # the closing SHOW GLOBAL STATUS counts itself
            if delta:
                counted[key] = max(delta, 0)
        counted["statements"] = sum(counted.get(kind, 0) for kind in SELECT_AND_DML)
        per_order = {}
        if orders:
            for key in ("statements", *SELECT_AND_DML, *TRANSACTIONS, "questions"):
                if key in counted or key == "statements":
                    per_order[key] = round(counted.get(key, 0) / orders, 2)
        return {
            "orders": orders,
            "per_order": per_order,
            "window": {key: counted[key] for key in sorted(counted)},
            "bench_own": {key: own[key] for key in sorted(own)},
            "other_connections": list(self.others.values()),
        }
