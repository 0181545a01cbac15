"""Two fleets on one machine: the ports a fleet listens on follow its own PORT and SMTP_PORT.

The mail sink's web port and the workers' metrics port used to be fixed (8026, 9191): a second
fleet's mail sink exited ("address already in use"), which made honcho stop that whole fleet,
and its metrics server died with a traceback. Each test starts single Procfile.dev processes,
as honcho would, with the environment of a fleet and nothing but that fleet's base ports set.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from config.settings import WORKER_METRICS_PORT_OFFSET
from tests.support import isolation
from tests.support.fleet import fleet_environment, free_port
from tests.support.isolation import management, own_vhost
from tests.support.polling import eventually_sync
from tests.support.processes import running

#: Never connected to: these processes boot without touching the database.
UNUSED_DATABASE = "mysql+aiomysql://root@127.0.0.1:3306/unused"


def port_with_free_neighbour(offset: int) -> int:
    """A free port ``p`` such that ``p + offset`` is free as well."""
    while True:
        port = free_port()
        if port + offset <= 65535 and is_free(port + offset):
            return port


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def answers(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.read().decode() if response.status == 200 else None
    except OSError:
        return None


def one_fleet(workdir: Path, broker_url: str, **overrides: str) -> dict[str, str]:
    """A fleet's environment with its derived ports left to the settings (no explicit metrics port)."""
    env = fleet_environment(
        database_url=UNUSED_DATABASE,
        broker_url=broker_url,
        redis_url=isolation.REDIS_URL,
        workdir=workdir,
        **overrides,
    )
    for derived in ("MAIL_WEB_PORT", "dramatiq_prom_port", "dramatiq_prom_db"):
        if derived not in overrides:
            env.pop(derived, None)
    # The workers' metrics folders are made in $TMPDIR: here, in the test's own.
    workdir.mkdir(parents=True, exist_ok=True)
    env["TMPDIR"] = str(workdir)
    return env


@pytest.fixture
def vhost(run_name):
    with own_vhost(f"{run_name}_{uuid.uuid4().hex[:6]}") as broker_url:
        yield broker_url


def consumers(broker_url: str, queue: str) -> int:
    vhost = broker_url.rsplit("/", 1)[1]
    try:
        return management("GET", f"/api/queues/{vhost}/{queue}").get("consumers", 0)  # type: ignore[union-attr]
    except OSError:
        return 0


def test_two_mail_sinks_on_their_own_smtp_ports_both_answer(tmp_path, vhost):
    first, second = port_with_free_neighbour(1), port_with_free_neighbour(1)
    envs = [
        one_fleet(tmp_path / name, vhost, SMTP_PORT=str(port)) for name, port in (("a", first), ("b", second))
    ]

    with running("mail", envs[0], tmp_path / "a.log") as a, running("mail", envs[1], tmp_path / "b.log") as b:
        for port in (first, second):
            eventually_sync(
                lambda port=port: answers(f"http://127.0.0.1:{port + 1}/healthz"),
                timeout=20,
                what=f"the mail sink of SMTP_PORT={port} on {port + 1}",
            )
        with socket.create_connection(("127.0.0.1", second), timeout=2) as smtp:
            assert smtp.recv(100).startswith(b"220")
        assert a.poll() is None and b.poll() is None


def test_two_workers_on_their_own_ports_serve_their_own_metrics_without_dead_processes(tmp_path, vhost):
    ports = [port_with_free_neighbour(WORKER_METRICS_PORT_OFFSET) for _ in range(2)]
    envs = [one_fleet(tmp_path / name, vhost, PORT=str(port)) for name, port in zip("ab", ports, strict=True)]
    # A gauge left behind by a process that died, in the folder the first worker will count into.
    folder = Path(envs[0]["TMPDIR"]) / f"orders-worker-metrics-{ports[0] + WORKER_METRICS_PORT_OFFSET}"
    dead_pid = leave_a_gauge_behind(folder)
    assert f"gauge_all_{dead_pid}.db" in {path.name for path in folder.iterdir()}

    with running("worker", envs[0], tmp_path / "a.log"), running("worker", envs[1], tmp_path / "b.log"):
        texts = [
            eventually_sync(
                lambda port=port: has_live_gauge(
                    answers(f"http://127.0.0.1:{port + WORKER_METRICS_PORT_OFFSET}/metrics")
                ),
                timeout=30,
                what=f"the metrics of the worker with PORT={port}",
            )
            for port in ports
        ]

    pids = [set(re.findall(r'orders_stock_drifting_skus\{pid="(\d+)"\}', text)) for text in texts]
    assert all(pids) and not pids[0] & pids[1], pids  # each endpoint shows only its own processes
    assert str(dead_pid) not in pids[0]
    assert f"gauge_all_{dead_pid}.db" not in {path.name for path in folder.iterdir()}


def test_a_worker_starts_although_its_metrics_port_is_taken(tmp_path, vhost):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = one_fleet(tmp_path, vhost, WORKER_METRICS_PORT=str(taken))
        log_path = tmp_path / "worker.log"

        with running("worker", env, log_path) as worker:
            eventually_sync(
                lambda: "worker.metrics_unavailable" in log_path.read_text(),
                timeout=30,
                what="the worker to report the taken metrics port",
            )
            eventually_sync(
                lambda: consumers(vhost, "reserve") > 0,
                timeout=30,
                what="the worker to consume the reserve queue",
            )
            assert worker.poll() is None

    log = log_path.read_text()
    assert "Traceback" not in log, log
    assert [line for line in log.splitlines() if "worker.metrics_unavailable" in line and str(taken) in line]


def leave_a_gauge_behind(folder: Path) -> int:
    """Run a process that sets the reconciliation gauge in ``folder`` and exits; return its pid."""
    program = (
        "import os\n"
        "from prometheus_client import Gauge\n"
        "Gauge('orders_stock_drifting_skus', 'SKUs drifting at the last reconciliation').set(3)\n"
        "print(os.getpid())\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={"PROMETHEUS_MULTIPROC_DIR": str(folder)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return int(result.stdout)


def has_live_gauge(text: str | None) -> str | None:
    return text if text and "orders_stock_drifting_skus{" in text else None
