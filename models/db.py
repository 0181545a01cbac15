"""Engine and session factory, one per process, created by the process's bootstrap."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

#: MariaDB/MySQL's ER_DUP_ENTRY: a unique or primary key already holds the value.
DUPLICATE_KEY = 1062

#: A pooled connection unused for longer than this is pinged before it is handed out.
IDLE_PING_SECONDS = 1.0


def create_engine(database_url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine for ``database_url`` that survives a database restart.

    A connection that sat idle in the pool is pinged before use (:func:`ping_idle_connections`);
    one in steady use is not, since a ping is a round trip on every transaction. When the
    database restarts under load, the first statement on a stale connection fails and SQLAlchemy
    then discards every connection of the pool: steps are retried, and the gateway answers that
    one request with a 503. ``pool_recycle`` renews connections before the server's idle timeout.
    """
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        # SQLAlchemy rolls back every connection it takes back, even one whose transaction was
        # just committed: a round trip per transaction. Every connection here is used through a
        # Connection or Session, which end their transaction (commit, or rollback on close), so
        # the reset only ever rolled back nothing.
        pool_reset_on_return=None,
        echo=echo,
        connect_args={"connect_timeout": 5},
        isolation_level="READ COMMITTED",
    )
    ping_idle_connections(engine)
    return engine


def ping_idle_connections(engine: AsyncEngine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping a pooled connection at checkout only when it was idle for ``idle_seconds`` or more.

    A failed ping raises :class:`~sqlalchemy.exc.DisconnectionError`, on which the pool discards
    the connection and hands out a fresh one (SQLAlchemy's documented pessimistic handling).
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _note_idle_since(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection failed its ping: {error!r}") from error


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def error_code(exc: DBAPIError) -> int | None:
    """The server's error number behind ``exc``, when it has one."""
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_duplicate_key(exc: DBAPIError) -> bool:
    """A unique or primary key already holds this value."""
    return error_code(exc) == DUPLICATE_KEY
