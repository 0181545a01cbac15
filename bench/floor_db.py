"""The database round trip alone: ``python -m bench.floor_db URL SECONDS TASKS``.

Run by :mod:`bench.floor` in a process of its own, so that its CPU time is the round trips' and
nothing else's. ``TASKS`` concurrent tasks on uvloop, each a loop of the smallest transaction a
step makes (lock a row by primary key, update it, commit), first through the fleet's engine
(:func:`models.db.create_engine`: SQLAlchemy Core over aiomysql, the fleet's pool settings), then
through aiomysql alone, to show what the engine's layers cost per round trip. Prints one JSON
line: for each, the round trips made (statements + commits), and this process's and MariaDB's
CPU seconds over the timed part.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

import aiomysql
import uvloop
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.procs import CpuMeter
from models.db import create_engine

ROWS = 64
LOCK = "SELECT n FROM bench_floor WHERE id = {} FOR UPDATE"
BUMP = "UPDATE bench_floor SET n = n + 1 WHERE id = {}"

#: One transaction on ``row``: two statements and the commit.
Transaction = Callable[[int], Awaitable[None]]


async def _timed(transaction: Transaction, seconds: float, tasks: int) -> dict[str, float]:
    """Run ``transaction`` from ``tasks`` loops for ``seconds`` (after a 1 s warm-up that fills the
    pool and the statement caches); round trips made and CPU used."""
    done = 0
    stop_at = time.monotonic() + 1.0

    async def loop(row: int) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await transaction(row)
            done += 3

    await asyncio.gather(*(loop(i % ROWS) for i in range(tasks)))
    done = 0
    cpu = CpuMeter(None)  # the servers, and this process as "bench"
    cpu.start()
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(loop(i % ROWS) for i in range(tasks)))
    cpu.stop()
    return {
        "round_trips": done,
        "wall_s": round(cpu.wall_s, 2),
        "client_cpu_s": round(cpu.seconds["bench"], 3),
        "mariadb_cpu_s": round(cpu.seconds.get("mariadb", 0.0), 3),
    }


async def through_engine(database_url: str, seconds: float, tasks: int) -> dict[str, float]:
    """The transaction on the fleet's engine, SQLAlchemy Core statements as the steps write them."""
    engine = create_engine(database_url, pool_size=tasks)
    lock, bump = text(LOCK.format(":id")), text(BUMP.format(":id"))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS bench_floor "
                    "(id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB"
                )
            )
            await connection.execute(
                text("INSERT IGNORE INTO bench_floor (id, n) VALUES (:id, 0)"),
                [{"id": i} for i in range(ROWS)],
            )

        async def transaction(row: int) -> None:
            async with engine.begin() as connection:
                await connection.execute(lock, {"id": row})
                await connection.execute(bump, {"id": row})

        return await _timed(transaction, seconds, tasks)
    finally:
        await engine.dispose()


async def through_driver(database_url: str, seconds: float, tasks: int) -> dict[str, float]:
    """The same transaction on aiomysql's own pool, with no SQLAlchemy in between."""
    url = make_url(database_url)
    pool = await aiomysql.create_pool(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        db=url.database,
        maxsize=tasks,
        autocommit=False,
    )
    lock, bump = LOCK.format("%s"), BUMP.format("%s")
    try:

        async def transaction(row: int) -> None:
            async with pool.acquire() as connection:
                async with connection.cursor() as cursor:
                    await cursor.execute(lock, (row,))
                    await cursor.fetchall()
                    await cursor.execute(bump, (row,))
                await connection.commit()

        return await _timed(transaction, seconds, tasks)
    finally:
        pool.close()
        await pool.wait_closed()


async def measure(database_url: str, seconds: float, tasks: int) -> dict[str, dict[str, float]]:
    """Both measurements, one after the other."""
    return {
        "engine": await through_engine(database_url, seconds, tasks),
        "driver": await through_driver(database_url, seconds, tasks),
    }


if __name__ == "__main__":
    url, duration, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(uvloop.run(measure(url, duration, concurrency))), flush=True)
