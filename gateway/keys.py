"""Typed keys for what the application holds: settings and the resources opened at startup."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import redis.asyncio as redis
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from config.settings import Settings
from messaging.live_status import StatusNotifier
from messaging.outbox import OutboxPublisher
from models.unit_of_work import UnitOfWorkFactory

if TYPE_CHECKING:  # the features import these keys: only their types are needed here
    from gateway.accounts.passwords import Passwords
    from gateway.operations.metrics import GatewayMetrics

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
PUBLISHER = web.AppKey("publisher", OutboxPublisher)
PASSWORDS: web.AppKey[Passwords] = web.AppKey("passwords")
# Redis, for live status: the client listeners subscribe with and the notifier that publishes on it.
REDIS = web.AppKey("redis", redis.Redis)
NOTIFIER = web.AppKey("notifier", StatusNotifier)
# Every transaction that changes orders comes from here, so each one announces what it changed
# (live status, customer emails, domain events) the same way the workers' transactions do.
UNITS_OF_WORK = web.AppKey("units_of_work", UnitOfWorkFactory)
# Set when the app begins to shut down, so open event streams end instead of holding the deploy.
STOPPING = web.AppKey("stopping", asyncio.Event)

# Prometheus metrics of this app (its own registry).
METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics")
