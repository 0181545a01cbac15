"""The floor: what the parts every placed order goes through cost here, with none of our work in them.

A placed order crosses RabbitMQ as messages, the database as round trips and the gateway as HTTP
requests. Each part is measured alone, in the same run and on the same machine as the e2e figures:

- a message (from :mod:`bench.ceiling`): published with confirms as the outbox does, then handled
  by a no-op actor on the fleet's own broker and middleware; publisher, worker and RabbitMQ CPU;
- a database round trip (:mod:`bench.floor_db`): the fleet's engine, SQLAlchemy Core over aiomysql
  on uvloop, running the smallest step transaction (lock a row, update it, commit) from 16 tasks;
  client and MariaDB CPU per statement or commit; and the same on aiomysql alone, for comparison;
- an HTTP request: ``GET /healthz`` on the running gateway over kept-alive connections, through
  all its middleware; the gateway's CPU per request.

:func:`lower_bound` adds them up for an order's shape: the messages per order measured in the
e2e phase, the domain events it publishes, a number of statements, one commit per step that
writes, and the two requests that reach the gateway (``POST /orders`` and the provider's webhook).
Nothing else an order needs is in it (validation, business rules, the provider call, the email,
logs), so it is a lower bound: what a placed order cannot cost less than in this stack, whatever
the code around the parts does.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiohttp

from bench.procs import CpuMeter, Roles
from tests.support.fleet import ROOT

#: Concurrent loops, as many as the fleet's worker threads (2 processes x 8).
TASKS = 16
#: Steps of a placed order that write and commit: POST /orders, reserve, pay, webhook, settle, notify.
COMMITS_PER_ORDER = 6
#: Requests that reach the gateway per placed order: the order itself and the provider's webhook.
REQUESTS_PER_ORDER = 2


def database(database_url: str, seconds: float, log) -> dict[str, float]:
    """Client and MariaDB CPU ms per round trip, from :mod:`bench.floor_db` in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.floor_db", database_url, str(seconds), str(TASKS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"floor: the database loop failed: {result.stderr[-2000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])

    def per_round_trip(loop: dict[str, float]) -> dict[str, float]:
        trips = loop["round_trips"]
        return {
            "round_trips_per_s": round(trips / loop["wall_s"]),
            "client": round(loop["client_cpu_s"] * 1000 / trips, 4),
            "mariadb": round(loop["mariadb_cpu_s"] * 1000 / trips, 4),
        }

    # The engine's figures are the floor (the fleet's way); the driver's alone show what its layers cost.
    figures = {**per_round_trip(measured["engine"]), "driver_alone": per_round_trip(measured["driver"])}
    log(f"floor: database round trip {figures}")
    return figures


async def http(gateway_url: str, roles: Roles, seconds: float, log) -> dict[str, float]:
    """The gateway's CPU ms per ``GET /healthz`` from ``TASKS`` kept-alive clients."""
    cpu = CpuMeter(roles)
    done = 0

    async def loop(session: aiohttp.ClientSession, stop_at: float) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            async with session.get(f"{gateway_url}/healthz") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"floor: /healthz answered {response.status}")
            done += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(loop(session, time.monotonic() + 1.0) for _ in range(TASKS)))  # warm-up
        done = 0
        await asyncio.to_thread(cpu.start)
        await asyncio.gather(*(loop(session, time.monotonic() + seconds) for _ in range(TASKS)))
        await asyncio.to_thread(cpu.stop)
    figures = {
        "requests_per_s": round(done / cpu.wall_s),
        "web": round(cpu.seconds.get("web", 0.0) * 1000 / done, 4),
    }
    log(f"floor: HTTP request {figures}")
    return figures


def lower_bound(
    floor: dict,
    *,
    messages_per_order: float,
    statements_per_order: float,
    commits_per_order: float = COMMITS_PER_ORDER,
    events_per_order: float = 0.0,
) -> dict[str, float]:
    """CPU ms per placed order of its messages, domain events (published; their consumers are
    someone else's), round trips and requests alone, and their sum."""
    per_publish = sum(floor["message"]["publish"].values())
    per_message = per_publish + sum(floor["message"]["consume"].values())
    per_round_trip = floor["database"]["client"] + floor["database"]["mariadb"]
    parts = {
        "messages": messages_per_order * per_message,
        "events": events_per_order * per_publish,
        "round_trips": (statements_per_order + commits_per_order) * per_round_trip,
        "requests": REQUESTS_PER_ORDER * floor["http"]["web"],
    }
    return {
        **{name: round(value, 2) for name, value in parts.items()},
        "total": round(sum(parts.values()), 2),
    }
