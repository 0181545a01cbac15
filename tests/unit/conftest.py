"""Unit tests need no service: one that reaches MariaDB, RabbitMQ or Redis fails at once, saying so.

``scripts/test tests/unit`` starts no service, and ``scripts/test-unit-isolated`` runs these tests
where nothing listens at all. Two guards keep them that way, whether the services run or not:

* the fixtures of tests/conftest.py that make a database and a vhost of the run's own on the real
  services (``database_url``, ``broker_url``, and ``settings``, ``engine``, ``sessionmaker`` built
  on them) fail here, naming tests/integration;
* a connection to a service's port (3306, 5672, 15672, 6379, or those the TEST_* variables of
  tests/support/isolation.py name), on any host, fails the test, even when the code under test
  catches the error (a client retrying, or a thread that dies).

Other sockets work as usual: in-process servers on 127.0.0.1 (the sandbox provider, a test SMTP
server, an aiohttp test server) are unit-test material.
"""

from __future__ import annotations

import socket
import urllib.parse

import pytest

from tests.support import isolation

MOVE = "it needs a service, so it belongs in tests/integration (tests/unit runs with none)"


def _port(url: str) -> int | None:
    try:
        return urllib.parse.urlsplit(url).port
    except ValueError:
        return None


SERVICE_PORTS: dict[int, str] = {
    3306: "MariaDB",
    5672: "RabbitMQ",
    15672: "the RabbitMQ management API",
    6379: "Redis",
}
for _url, _name in [
    (isolation.MYSQL_SERVER_URL, "MariaDB"),
    (isolation.AMQP_SERVER, "RabbitMQ"),
    (isolation.MANAGEMENT_URL, "the RabbitMQ management API"),
    (isolation.REDIS_URL, "Redis"),
]:
    if (_configured := _port(_url)) is not None:
        SERVICE_PORTS[_configured] = _name


def _needs_services(fixture: str) -> None:
    pytest.fail(f"a unit test asked for the fixture {fixture}: {MOVE}", pytrace=False)


@pytest.fixture(scope="session")
def database_url():
    _needs_services("database_url (a database of the run's own on MariaDB)")


@pytest.fixture(scope="session")
def broker_url():
    _needs_services("broker_url (a vhost of the run's own on RabbitMQ)")


@pytest.fixture(scope="session")
def settings():
    _needs_services("settings (pointing at the run's database, vhost and Redis)")


@pytest.fixture
def engine():
    _needs_services("engine (on the run's database)")


@pytest.fixture
def sessionmaker():
    _needs_services("sessionmaker (on the run's database)")


#: Services the current test tried to reach, reported even if the code under test swallowed the error.
_reached: list[str] = []
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _refuse_services(sock: socket.socket, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        host, port = address[0], address[1]
        if (service := SERVICE_PORTS.get(port)) is not None:
            attempt = f"{service} at {host}:{port}"
            _reached.append(attempt)
            pytest.fail(f"a unit test tried to reach {attempt}: {MOVE}", pytrace=False)


def _guarded_connect(self: socket.socket, address) -> None:
    _refuse_services(self, address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address) -> int:
    _refuse_services(self, address)
    return _connect_ex(self, address)


def _fail_if_a_service_was_reached():
    """Run a test phase; fail it if it reached a service and did not fail of it already."""
    try:
        result = yield
    except BaseException:
        _reached.clear()
        raise
    if _reached:
        attempts = ", ".join(sorted(set(_reached)))
        _reached.clear()
        pytest.fail(f"a unit test tried to reach {attempts}: {MOVE}", pytrace=False)
    return result


def _guard(on: bool) -> None:
    socket.socket.connect = _guarded_connect if on else _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex if on else _connect_ex  # type: ignore[method-assign]


# The guard is on from the setup of each unit test (its fixtures of any scope included) to the end
# of its teardown only, so that tests of other directories run in the same session are unaffected.
# After the session's last test, whatever it is, the session's fixtures are torn down: those of
# tests/conftest.py drop the run's database and vhost, so then the guard stays off.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    _reached.clear()
    _guard(True)
    return (yield from _fail_if_a_service_was_reached())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _fail_if_a_service_was_reached())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    _guard(nextitem is not None)
    try:
        return (yield from _fail_if_a_service_was_reached())
    finally:
        _guard(False)
