"""The gateway application factory: routes, middleware, and the resources opened at startup.

Nothing connects at import or in :func:`create_app`: the database engine, the broker behind
the outbox publisher, the Redis client for live status and the password-hashing pool are opened
by ``cleanup_ctx`` when the app starts and closed when it stops, so tests and the server build
apps freely. The unit-of-work factory made from them is what every order-changing handler uses,
so a ship done here emits its email and domain event exactly as a worker's step would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from config.settings import Settings, uses_dev_token_secret
from gateway.accounts.passwords import Passwords
from gateway.http.problems import problem_middleware
from gateway.http.request_log import request_log_middleware
from gateway.keys import (
    ENGINE,
    METRICS,
    NOTIFIER,
    PASSWORDS,
    PUBLISHER,
    REDIS,
    SESSIONMAKER,
    SETTINGS,
    STOPPING,
    UNITS_OF_WORK,
)
from gateway.operations.metrics import GatewayMetrics
from gateway.routes import setup_routes
from messaging.live_status import StatusNotifier, create_redis
from messaging.outbox import OutboxPublisher
from messaging.queues import NOTIFY
from messaging.rabbitmq import fleet_broker
from models.db import create_engine, create_sessionmaker
from models.events import EventEmitter
from models.unit_of_work import UnitOfWorkFactory


def create_app(settings: Settings) -> web.Application:
    """Build the gateway for ``settings``; resources open when the app starts."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # The log middleware (which also times requests into the latency histogram) is outermost,
        # so it sees the status the problem middleware chose.
        middlewares=[request_log_middleware, problem_middleware],
    )
    app[SETTINGS] = settings
    app[METRICS] = GatewayMetrics()
    app[STOPPING] = asyncio.Event()
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_publisher)
    app.cleanup_ctx.append(_live_status)
    app.cleanup_ctx.append(_units_of_work)
    app.cleanup_ctx.append(_passwords)
    app.on_startup.append(_warn_about_dev_token_secret)
    app.on_shutdown.append(_stop_streams)
    setup_routes(app)
    return app


async def _warn_about_dev_token_secret(app: web.Application) -> None:
    # Outside development the settings refuse the published secret; here it is allowed, but
    # anyone who reads the source can sign tokens for any account, which deserves one line.
    if uses_dev_token_secret(app[SETTINGS]):
        # Looked up now, not at import: logging is configured by then (and tests can capture it).
        structlog.get_logger(__name__).warning(
            "auth.dev_token_secret",
            detail="customer tokens are signed with the published development TOKEN_SECRET; "
            "set TOKEN_SECRET (at least 32 characters) for anything but local development",
        )


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS].database_url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = create_sessionmaker(engine)
    yield
    await engine.dispose()


async def _publisher(app: web.Application) -> AsyncIterator[None]:
    # The broker connects lazily, on the publisher's own thread, at the first message.
    broker = fleet_broker(app[SETTINGS], middleware=[])
    publisher = OutboxPublisher(broker, app[SESSIONMAKER])
    app[PUBLISHER] = publisher
    yield
    # Marks what was confirmed, then waits for an in-flight publish and the broker's goodbye off the loop.
    await publisher.aclose()


async def _live_status(app: web.Application) -> AsyncIterator[None]:
    # No connection is made here: a Redis outage must not stop the gateway from starting.
    client = create_redis(app[SETTINGS].redis_url)
    notifier = StatusNotifier(client, on_change=app[METRICS].count_status_change)
    app[REDIS] = client
    app[NOTIFIER] = notifier
    yield
    await notifier.close()  # closes the client's pool too


async def _units_of_work(app: web.Application) -> AsyncIterator[None]:
    # Built from the resources opened just before it; it owns nothing that needs closing.
    settings = app[SETTINGS]
    app[UNITS_OF_WORK] = UnitOfWorkFactory(
        app[SESSIONMAKER], app[PUBLISHER], app[NOTIFIER], EventEmitter(settings.events_exchange, NOTIFY)
    )
    yield


async def _stop_streams(app: web.Application) -> None:
    # Shutdown runs before the server waits for open requests: event streams see this within a
    # second and end cleanly, and their clients reconnect to another instance.
    app[STOPPING].set()


async def _passwords(app: web.Application) -> AsyncIterator[None]:
    passwords = Passwords()
    app[PASSWORDS] = passwords
    yield
    await asyncio.get_running_loop().run_in_executor(None, passwords.close)
