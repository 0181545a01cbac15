"""Typed keys for what the application holds: settings and the resources opened at startup."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from config.settings import Settings
from gateway.passwords import Passwords
from workers.outbox import OutboxPublisher

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
PUBLISHER = web.AppKey("publisher", OutboxPublisher)
PASSWORDS = web.AppKey("passwords", Passwords)
