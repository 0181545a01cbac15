"""Taking the machine's services away and bringing them back, as an outage would."""

from __future__ import annotations

import subprocess
import time

from bench.faults.supervisor import ROOT


def _run(*command: str, timeout: float = 120) -> None:
    subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def ensure_services() -> None:
    """Start whatever service is down again (the project's own services script)."""
    _run(str(ROOT / "scripts" / "services"), timeout=300)


def stop_rabbitmq() -> None:
    """Stop the RabbitMQ application: every connection drops; durable queues and messages stay."""
    _run("rabbitmqctl", "-q", "stop_app")


def start_rabbitmq() -> None:
    _run("rabbitmqctl", "-q", "start_app")
    ensure_services()


def stop_mariadb() -> None:
    """Shut MariaDB down cleanly (committed transactions survive, open ones roll back)."""
    _run("mariadb-admin", "-uroot", "shutdown")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (
            subprocess.run(
                ["mariadb-admin", "-uroot", "-h127.0.0.1", "--connect-timeout=1", "ping"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).returncode
            != 0
        ):
            return
        time.sleep(0.2)


def stop_redis() -> None:
    """Shut Redis down without saving: what it held is lost, as it may be."""
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
    )
