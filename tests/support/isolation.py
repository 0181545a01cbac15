"""Per-run isolation on the real services: a database and a RabbitMQ vhost of the run's own."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from models.migrate import migrate

MANAGEMENT_URL = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672")
MANAGEMENT_USER = os.environ.get("RABBITMQ_MANAGEMENT_USER", "guest")
MANAGEMENT_PASSWORD = os.environ.get("RABBITMQ_MANAGEMENT_PASSWORD", "guest")
MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+aiomysql://root@127.0.0.1:3306")
AMQP_SERVER = os.environ.get("TEST_AMQP_SERVER", "amqp://guest:guest@127.0.0.1:5672")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def run_name() -> str:
    """A name unique to this test run."""
    return f"orders_test_{uuid.uuid4().hex[:10]}"


def management(method: str, path: str, body: dict | None = None) -> object:
    """Call the RabbitMQ management API (the services script enables the plugin)."""
    request = urllib.request.Request(
        MANAGEMENT_URL + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "content-type": "application/json",
            "authorization": "Basic "
            + base64.b64encode(f"{MANAGEMENT_USER}:{MANAGEMENT_PASSWORD}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def create_vhost(name: str) -> str:
    """Create vhost ``name`` with full rights for the test user; returns its BROKER_URL."""
    quoted = urllib.parse.quote(name, safe="")
    management("PUT", f"/api/vhosts/{quoted}", {})
    management(
        "PUT",
        f"/api/permissions/{quoted}/{MANAGEMENT_USER}",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )
    return f"{AMQP_SERVER}/{quoted}"


def delete_vhost(name: str) -> None:
    """Remove a test vhost with all its queues."""
    try:
        management("DELETE", f"/api/vhosts/{urllib.parse.quote(name, safe='')}")
    except urllib.error.HTTPError:
        pass


def queue_depths(vhost: str) -> dict[str, int]:
    """Messages waiting per queue in ``vhost``."""
    queues = management("GET", f"/api/queues/{urllib.parse.quote(vhost, safe='')}")
    return {q["name"]: q.get("messages", 0) for q in queues}  # type: ignore[union-attr]


@contextmanager
def own_database(name: str):
    """A fresh, migrated database called ``name``, dropped afterwards."""
    url = f"{MYSQL_SERVER_URL}/{name}"
    migrate(url)
    try:
        yield url
    finally:

        async def drop() -> None:
            engine = create_async_engine(f"{MYSQL_SERVER_URL}/")
            async with engine.begin() as connection:
                await connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            await engine.dispose()

        asyncio.run(drop())


@contextmanager
def own_vhost(name: str):
    """A RabbitMQ vhost called ``name``, deleted afterwards."""
    url = create_vhost(name)
    try:
        yield url
    finally:
        delete_vhost(name)
