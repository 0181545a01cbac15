"""Fixtures shared by every test tier: a database and vhost of this run's own on the real services."""

from __future__ import annotations

import dataclasses

import pytest
import pytest_asyncio

from config import Settings, load_settings
from models.db import create_engine, create_sessionmaker
from tests.support import isolation
from tests.support.isolation import own_database, own_vhost


@pytest.fixture(scope="session")
def run_name() -> str:
    return isolation.run_name()


@pytest.fixture(scope="session")
def database_url(run_name: str):
    with own_database(run_name) as url:
        yield url


@pytest.fixture(scope="session")
def broker_url(run_name: str):
    with own_vhost(run_name) as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, broker_url: str) -> Settings:
    """Settings pointing at this run's database, vhost and Redis database."""
    base = load_settings({})
    return dataclasses.replace(
        base,
        database_url=database_url,
        broker_url=broker_url,
        redis_url=isolation.REDIS_URL,
        log_format="console",
        # Every test signs customers in from 127.0.0.1, some with wrong passwords on purpose, into a
        # Redis database other runs share; the limits themselves are tested on their own.
        auth_max_failures_per_account=1_000_000,
        auth_max_failures_per_address=1_000_000,
    )


@pytest_asyncio.fixture
async def engine(settings: Settings):
    engine = create_engine(settings.database_url, pool_size=20)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def sessionmaker(engine):
    return create_sessionmaker(engine)


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests measured (tests/support/report.py)."""
    from tests.support.report import LINES

    if LINES:
        terminalreporter.section("measured")
        for line in LINES:
            terminalreporter.write_line(line)
