"""The whole fleet, started from Procfile.dev, on this run's database and vhost."""

from __future__ import annotations

import pytest

from tests.support.fleet import Fleet, fleet_environment


@pytest.fixture(scope="session")
def fleet(settings, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fleet")
    env = fleet_environment(database_url=settings.database_url, broker_url=settings.broker_url,
                            redis_url=settings.redis_url, workdir=workdir,
                            ADMIN_TOKEN="e2e-admin-token")
    fleet = Fleet(env=env, log_path=workdir / "fleet.log")
    fleet.start()
    yield fleet
    fleet.stop()
    print(f"\nfleet log: {fleet.log_path}")
