"""The bench's own corner of the local services: a database, RabbitMQ vhosts, a Redis database.

Nothing shared is touched: the database and vhosts are created for this run and removed at the
end; the Redis database number (``BENCH_REDIS_DB``, 14 by default) is flushed at the start and
the end of the run and used by nothing else; so is ``BENCH_REDIS_PEER_DB`` (12), the database of
the "loaded" Redis peer.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata

import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import isolation

REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))
#: The "loaded" Redis peer needs a database apart from the fleet's (13 is the chaos run's, 15 the tests').
REDIS_PEER_DB = int(os.environ.get("BENCH_REDIS_PEER_DB", "12"))
REDIS_URL = f"{REDIS_SERVER}/{REDIS_DB}"


def run_name() -> str:
    return f"orders_bench_{uuid.uuid4().hex[:8]}"


#: A database and a vhost of the run's own (shared with the tests and the chaos run).
own_database = isolation.own_database
own_vhost = isolation.own_vhost


@contextmanager
def dropped_database(name: str) -> Iterator[str]:
    """The URL of database ``name`` (made by the fleet's own ``release`` process), dropped afterwards."""
    try:
        yield f"{isolation.MYSQL_SERVER_URL}/{name}"
    finally:

        async def drop() -> None:
            engine = create_async_engine(f"{isolation.MYSQL_SERVER_URL}/")
            try:
                async with engine.begin() as connection:
                    await connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            finally:
                await engine.dispose()

        asyncio.run(drop())


def flush_redis_db() -> None:
    """Empty the fleet's Redis database (between two fleets of one run)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def own_redis_db() -> Iterator[str]:
    """The bench's Redis databases (the fleet's and the loaded peer's), empty at the start and
    flushed again at the end; yields the fleet's REDIS_URL."""
    clients = [redis.Redis.from_url(f"{REDIS_SERVER}/{db}") for db in (REDIS_DB, REDIS_PEER_DB)]
    for client in clients:
        client.flushdb()
    try:
        yield REDIS_URL
    finally:
        for client in clients:
            client.flushdb()
            client.close()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


async def _mariadb_version() -> str:
    engine = create_async_engine(f"{isolation.MYSQL_SERVER_URL}/")
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text("SELECT VERSION()"))).scalar_one()
    finally:
        await engine.dispose()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine() -> dict[str, object]:
    """Where and with what the figures were measured."""
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    try:
        rabbitmq = isolation.management("GET", "/api/overview")["rabbitmq_version"]  # type: ignore[index]
    except Exception:
        rabbitmq = "?"
    try:
        redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    except Exception:
        redis_version = "?"
    try:
        mariadb = asyncio.run(_mariadb_version())
    except Exception:
        mariadb = "?"
    try:
        kernel = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        kernel = platform.release()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": memory_gb,
        "kernel": kernel,
        "python": platform.python_version(),
        "mariadb": mariadb,
        "rabbitmq": rabbitmq,
        "redis": redis_version,
        "dramatiq": _version("dramatiq"),
        "aiohttp": _version("aiohttp"),
        "sqlalchemy": _version("sqlalchemy"),
    }
