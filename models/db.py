"""Engine and session factory, one per process, created by the process's bootstrap."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def create_engine(database_url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine for ``database_url`` with pessimistic connection checks.

    ``pool_pre_ping`` and ``pool_recycle`` let a process survive a database restart without
    being restarted itself.
    """
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        echo=echo,
        connect_args={"connect_timeout": 5},
        isolation_level="READ COMMITTED",
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
