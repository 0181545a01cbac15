"""``GET /readyz``: can this gateway do its work? Database, broker and Redis, each within a second.

A load balancer takes an unready gateway out of rotation; the answer names what is missing so
an operator knows where to look. Redis is reported but, as it only holds what may be lost, the
gateway counts as ready without it (orders are still taken); its state shows in the body.

The broker is up while any node ``BROKER_URL`` lists answers: the gateway's publisher connects
to the first that does. With several nodes each one is also reported on its own
(``"broker 10.0.0.7:5672": "down: ..."``), so a lost node shows without making the gateway unready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pika
from aiohttp import web
from sqlalchemy import text

from config.broker_nodes import broker_nodes, node_label
from gateway.keys import REDIS, SESSIONMAKER, SETTINGS

CHECK_TIMEOUT_SECONDS = 1.0


async def _database(app: web.Application) -> None:
    async with app[SESSIONMAKER]() as session:
        await session.execute(text("SELECT 1"))


def _node_blocking(url: str) -> None:
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = CHECK_TIMEOUT_SECONDS
    parameters.blocked_connection_timeout = CHECK_TIMEOUT_SECONDS
    parameters.connection_attempts = 1
    pika.BlockingConnection(parameters).close()


async def _node(url: str) -> None:
    # pika blocks: the check runs on a worker thread, never on the event loop.
    await asyncio.get_running_loop().run_in_executor(None, _node_blocking, url)


async def _redis(app: web.Application) -> None:
    await app[REDIS].ping()


CHECKS: dict[str, Callable[[web.Application], Awaitable[None]]] = {
    "database": _database,
    "redis": _redis,
}
#: Without these the gateway cannot take an order.
REQUIRED = ("database", "broker")


async def _outcome(check: Awaitable[None]) -> str:
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS * 2)
    except Exception as error:  # any failure is "not ready": its kind is all the probe needs
        return f"down: {type(error).__name__}"
    return "ok"


async def _broker_outcomes(broker_url: str) -> dict[str, str]:
    """``{"broker": ...}``: ``ok`` when any node answers, else the first node's failure; with
    several nodes also ``"broker <host:port>"`` for each of them."""
    nodes = broker_nodes(broker_url)
    outcomes = await asyncio.gather(*(_outcome(_node(url)) for url in nodes))
    overall = "ok" if "ok" in outcomes else outcomes[0]
    if len(nodes) == 1:
        return {"broker": overall}
    return {
        "broker": overall,
        **{f"broker {node_label(url)}": o for url, o in zip(nodes, outcomes, strict=True)},
    }


async def check_dependencies(app: web.Application) -> dict[str, str]:
    """Run every check at once; ``{"database": "ok", "broker": "down: ...", ...}``."""
    outcomes, broker = await asyncio.gather(
        asyncio.gather(*(_outcome(check(app)) for check in CHECKS.values())),
        _broker_outcomes(app[SETTINGS].broker_url),
    )
    checks = dict(zip(CHECKS, outcomes, strict=True))
    return {"database": checks["database"], **broker, "redis": checks["redis"]}
