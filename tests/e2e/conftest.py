"""The whole fleet, started from Procfile.dev, on a database and vhost of its own.

The fleet's workers consume every queue of their vhost, so they get one that the
integration tests (which publish real messages) never touch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.support import isolation
from tests.support.api import Api
from tests.support.fleet import PROVIDERS, Fleet, fleet_environment
from tests.support.isolation import own_database, own_vhost
from tests.support.smtp import SmtpServer

#: Short holds, so expiry can be watched end to end within a test.
HOLD_SECONDS = 3


#: Finished orders move to the archive this long after their last change.
ARCHIVE_AFTER_SECONDS = 5


@pytest.fixture(scope="session")
def smtp():
    """The SMTP server the fleet mails customers through, run by the tests."""
    server = SmtpServer().start()
    yield server
    server.stop()


@contextlib.contextmanager
def running_fleet(name: str, provider: str, workdir: Path, smtp: SmtpServer) -> Iterator[Fleet]:
    """The whole fleet on a database and vhost of its own, taking payments through ``provider``."""
    with own_database(name) as database_url, own_vhost(name) as broker_url:
        env = fleet_environment(
            database_url=database_url,
            broker_url=broker_url,
            redis_url=isolation.REDIS_URL,
            workdir=workdir,
            provider=provider,
            ADMIN_TOKEN="e2e-admin-token",
            HOLD_SECONDS=str(HOLD_SECONDS),
            SMTP_URL=smtp.url,
            ARCHIVE_AFTER_SECONDS=str(ARCHIVE_AFTER_SECONDS),
            RECONCILE_EVERY_SECONDS="2",
        )
        fleet = Fleet(env=env, log_path=workdir / "fleet.log")
        fleet.start()
        try:
            yield fleet
        finally:
            fleet.stop()
        print(f"\nfleet log ({provider}): {fleet.log_path}")


@pytest.fixture(scope="session")
def sandbox_fleet(run_name, tmp_path_factory, smtp):
    """The fleet with the sandbox provider (``PSP_PROVIDER=sandbox``)."""
    with running_fleet(f"{run_name}_e2e", "sandbox", tmp_path_factory.mktemp("fleet"), smtp) as fleet:
        yield fleet


@pytest.fixture(scope="session")
def stripe_fleet(run_name, tmp_path_factory, smtp):
    """The fleet with Stripe (``PSP_PROVIDER=stripe``), its SDK pointed at the sandbox's Stripe face."""
    with running_fleet(f"{run_name}_e2e_stripe", "stripe", tmp_path_factory.mktemp("stripe"), smtp) as fleet:
        yield fleet


@pytest.fixture
def fleet(request):
    """The sandbox fleet, or the one a test names with ``with_each_provider``."""
    provider = getattr(request, "param", "sandbox")
    return request.getfixturevalue(f"{provider}_fleet")


#: Runs a test once per payment provider: the same flows must hold with both.
with_each_provider = pytest.mark.parametrize("fleet", PROVIDERS, indirect=True)


@pytest_asyncio.fixture
async def api(fleet):
    """A client of the fleet's gateway."""
    async with aiohttp.ClientSession() as client:
        yield Api(client, fleet.gateway_url, fleet.env["ADMIN_TOKEN"])
