"""``GET /readyz``: can this gateway do its work? Database, broker and Redis, each within a second.

A load balancer takes an unready gateway out of rotation; the answer names what is missing so
an operator knows where to look. Redis is reported but, as it only holds what may be lost, the
gateway counts as ready without it (orders are still taken); its state shows in the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pika
from aiohttp import web
from sqlalchemy import text

from gateway.keys import REDIS, SESSIONMAKER, SETTINGS

CHECK_TIMEOUT_SECONDS = 1.0


async def _database(app: web.Application) -> None:
    async with app[SESSIONMAKER]() as session:
        await session.execute(text("SELECT 1"))


def _broker_blocking(url: str) -> None:
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = CHECK_TIMEOUT_SECONDS
    parameters.blocked_connection_timeout = CHECK_TIMEOUT_SECONDS
    parameters.connection_attempts = 1
    pika.BlockingConnection(parameters).close()


async def _broker(app: web.Application) -> None:
    # pika blocks: the check runs on a worker thread, never on the event loop.
    await asyncio.get_running_loop().run_in_executor(None, _broker_blocking, app[SETTINGS].broker_url)


async def _redis(app: web.Application) -> None:
    await app[REDIS].ping()


CHECKS: dict[str, Callable[[web.Application], Awaitable[None]]] = {
    "database": _database,
    "broker": _broker,
    "redis": _redis,
}
#: Without these the gateway cannot take an order.
REQUIRED = ("database", "broker")


async def _outcome(check: Callable[[web.Application], Awaitable[None]], app: web.Application) -> str:
    try:
        await asyncio.wait_for(check(app), CHECK_TIMEOUT_SECONDS * 2)
    except Exception as error:  # any failure is "not ready": its kind is all the probe needs
        return f"down: {type(error).__name__}"
    return "ok"


async def check_dependencies(app: web.Application) -> dict[str, str]:
    """Run every check at once; ``{"database": "ok", "broker": "down: ...", ...}``."""
    outcomes = await asyncio.gather(*(_outcome(check, app) for check in CHECKS.values()))
    return dict(zip(CHECKS, outcomes, strict=True))
