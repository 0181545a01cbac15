"""The database round trip alone, on the fleet's own engine: ``python -m bench.floor_db URL SECONDS TASKS``.

Run by :mod:`bench.floor` in a process of its own, so that its CPU time is the round trips' and
nothing else's. ``TASKS`` concurrent tasks on uvloop, each a loop of the smallest transaction a
step makes (lock a row by primary key, update it, commit), through :func:`models.db.create_engine`
(SQLAlchemy Core over aiomysql, the fleet's pool settings). Prints one JSON line: the round trips
made (statements + commits), and this process's and MariaDB's CPU seconds over the timed part.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import uvloop
from sqlalchemy import text

from bench.procs import CpuMeter
from models.db import create_engine

ROWS = 64


async def measure(database_url: str, seconds: float, tasks: int) -> dict[str, float]:
    """Round trips made by ``tasks`` concurrent loops for ``seconds``, and the CPU they took here and in MariaDB."""
    engine = create_engine(database_url, pool_size=tasks)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE IF NOT EXISTS bench_floor "
                                          "(id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB"))
            await connection.execute(text("INSERT IGNORE INTO bench_floor (id, n) VALUES (:id, 0)"),
                                     [{"id": i} for i in range(ROWS)])
        lock = text("SELECT n FROM bench_floor WHERE id = :id FOR UPDATE")
        bump = text("UPDATE bench_floor SET n = n + 1 WHERE id = :id")
        done = 0
        stop_at = 0.0

        async def loop(row: int) -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                async with engine.begin() as connection:
                    await connection.execute(lock, {"id": row})
                    await connection.execute(bump, {"id": row})
                done += 3  # two statements and the commit

        # A short warm-up fills the pool and SQLAlchemy's statement cache before the clock starts.
        stop_at = time.monotonic() + 1.0
        await asyncio.gather(*(loop(i % ROWS) for i in range(tasks)))
        done = 0
        cpu = CpuMeter(None)  # the servers, and this process as "bench"
        cpu.start()
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(loop(i % ROWS) for i in range(tasks)))
        cpu.stop()
        return {"round_trips": done, "wall_s": round(cpu.wall_s, 2), "client_cpu_s": round(cpu.seconds["bench"], 3),
                "mariadb_cpu_s": round(cpu.seconds.get("mariadb", 0.0), 3)}
    finally:
        await engine.dispose()


if __name__ == "__main__":
    url, duration, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(uvloop.run(measure(url, duration, concurrency))), flush=True)
