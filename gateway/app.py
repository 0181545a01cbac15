"""The gateway application factory: routes, middleware, and the resources opened at startup.

Nothing connects at import or in :func:`create_app`: the database engine, the broker behind
the outbox publisher and the password-hashing pool are opened by ``cleanup_ctx`` when the app
starts and closed when it stops, so tests and the server build apps freely.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from aiohttp import web
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from config.settings import Settings
from gateway.keys import ENGINE, PASSWORDS, PUBLISHER, SESSIONMAKER, SETTINGS
from gateway.passwords import Passwords
from gateway.problems import problem_middleware
from gateway.request_log import request_log_middleware
from gateway.routes import setup_routes
from models.db import create_engine, create_sessionmaker
from workers.outbox import OutboxPublisher


def create_app(settings: Settings) -> web.Application:
    """Build the gateway for ``settings``; resources open when the app starts."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # The log middleware is outermost, so it sees the status the problem middleware chose.
        middlewares=[request_log_middleware, problem_middleware],
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_publisher)
    app.cleanup_ctx.append(_passwords)
    setup_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS].database_url)
    app[ENGINE] = engine
    app[SESSIONMAKER] = create_sessionmaker(engine)
    yield
    await engine.dispose()


async def _publisher(app: web.Application) -> AsyncIterator[None]:
    # The broker connects lazily, on the publisher's own thread, at the first message.
    broker = RabbitmqBroker(url=app[SETTINGS].broker_url, confirm_delivery=True, middleware=[])
    publisher = OutboxPublisher(broker, app[SESSIONMAKER])
    app[PUBLISHER] = publisher
    yield
    # Closing waits for an in-flight publish and the broker's goodbye: not on the loop.
    await asyncio.get_running_loop().run_in_executor(None, publisher.close)


async def _passwords(app: web.Application) -> AsyncIterator[None]:
    passwords = Passwords()
    app[PASSWORDS] = passwords
    yield
    await asyncio.get_running_loop().run_in_executor(None, passwords.close)
