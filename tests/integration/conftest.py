"""Integration fixtures: a step runtime on the real database and vhost, and the sandbox PSP."""

from __future__ import annotations

import dataclasses

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from gateway.app import create_app
from sandbox.psp import create_app as create_psp_app
from tests.support.smtp import SmtpServer
from workers.runtime import build_runtime


@pytest_asyncio.fixture
async def psp_url(unused_tcp_port_factory):
    """The sandbox payment provider, served in-process over real HTTP; webhooks go nowhere."""
    port = unused_tcp_port_factory()
    url = f"http://127.0.0.1:{port}"
    app = create_psp_app(
        webhook_url="http://127.0.0.1:9/payments/webhook",
        webhook_secret="test-secret",
        public_url=url,
        retry_base_seconds=5,
        retry_max_seconds=5,
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield url
    await runner.cleanup()


@pytest_asyncio.fixture
async def runtime(settings, psp_url):
    """What a worker process gives its steps, publishing to this run's vhost."""
    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=[])
    runtime = build_runtime(dataclasses.replace(settings, psp_url=psp_url, hold_seconds=60), broker)
    yield runtime
    await runtime.close()


@pytest_asyncio.fixture
async def client(settings):
    """The gateway app, served on a test server over real HTTP."""
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@pytest.fixture
def admin(settings) -> dict[str, str]:
    """Headers carrying the admin bearer token."""
    return {"Authorization": f"Bearer {settings.admin_token}"}


@pytest.fixture
def smtp():
    """A test-owned SMTP server that records what it receives."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailing(runtime, smtp):
    """The runtime, sending mail to the test's SMTP server."""
    return dataclasses.replace(runtime, settings=dataclasses.replace(runtime.settings, smtp_url=smtp.url))
