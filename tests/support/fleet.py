"""Starting the real fleet (``honcho -f Procfile.dev start``) for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


#: Ports handed to test processes come from below the kernel's ephemeral range (32768-60999 on
#: Linux), which every outgoing connection draws from: a port picked there and bound a second
#: later by a starting process can meanwhile be taken by some connection (seen as a worker whose
#: metrics port was "already in use"). Here only other tests' picks can collide, and the bind
#: check plus the random pick make that rare.
_TEST_PORTS = range(20000, 32000)
# Its own source of randomness: a test that seeds the global one (hypothesis does) must not make
# two runs on one machine pick the same ports.
_PICK = random.SystemRandom()


def free_port() -> int:
    """A port nothing listens on now, outside the ephemeral range."""
    while True:
        port = _PICK.choice(_TEST_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        return port


def answers_ok(url: str) -> bool:
    """True when ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class FleetUrls:
    """Where the HTTP processes of a fleet started with ``env`` answer."""

    env: dict[str, str]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    @property
    def psp_url(self) -> str:
        return self.env["PSP_URL"]

    @property
    def mail_url(self) -> str:
        return f"http://127.0.0.1:{self.env['MAIL_WEB_PORT']}"

    @property
    def health_probes(self) -> list[str]:
        """The URLs that all answer once the fleet is up."""
        return [f"{self.gateway_url}/healthz", f"{self.psp_url}/healthz", f"{self.mail_url}/healthz"]


@dataclass
class Fleet(FleetUrls):
    """A running fleet: its URLs, environment and combined log file."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def start(self, timeout: float = 60.0) -> None:
        """Start every Procfile.dev process and wait until the HTTP ones answer."""
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 (honcho writes to it until stopped)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile.dev"), "start", "--no-prefix"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not all(answers_ok(url) for url in self.health_probes):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"fleet did not start; see {self.log_path}:\n{self.log_path.read_text()[-4000:]}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None
        self.log_file.close()

    def log_lines(self, needle: str) -> list[str]:
        """Lines of the combined log mentioning ``needle`` (e.g. an order id)."""
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if needle in line]


#: The payment providers a fleet can be run with (``PSP_PROVIDER``).
PROVIDERS = ("sandbox", "stripe")


def provider_environment(provider: str, psp_url: str) -> dict[str, str]:
    """The variables that point a fleet at ``provider``: Stripe means the SDK talks to the
    sandbox's Stripe face, with a test key and a webhook secret of this fleet's own."""
    if provider == "sandbox":
        return {"PSP_PROVIDER": "sandbox"}
    if provider != "stripe":
        raise ValueError(f"unknown payment provider {provider!r}; expected one of {PROVIDERS}")
    return {
        "PSP_PROVIDER": "stripe",
        "STRIPE_API_KEY": f"sk_test_{secrets.token_hex(12)}",
        "STRIPE_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(16)}",
        "STRIPE_API_BASE": f"{psp_url}/stripe",
    }


def fleet_environment(
    *,
    database_url: str,
    broker_url: str,
    redis_url: str,
    workdir: Path,
    provider: str = "sandbox",
    **overrides: str,
) -> dict[str, str]:
    """Environment of a fleet on free ports, pointed at the given database, vhost and Redis, taking
    payments through ``provider`` (``PROVIDERS``)."""
    port, psp_port, smtp_port, mail_web_port = (free_port() for _ in range(4))
    (workdir / "prometheus").mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PORT": str(port),
            "DATABASE_URL": database_url,
            "BROKER_URL": broker_url,
            "REDIS_URL": redis_url,
            "PSP_PORT": str(psp_port),
            "PSP_URL": f"http://127.0.0.1:{psp_port}",
            "GATEWAY_URL": f"http://127.0.0.1:{port}",
            "SMTP_PORT": str(smtp_port),
            "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "MAIL_WEB_PORT": str(mail_web_port),
            "MAIL_DIR": str(workdir / "mail"),
            # The workers' Prometheus endpoint, on a port and in a folder of this fleet's own.
            "dramatiq_prom_port": str(free_port()),
            "dramatiq_prom_db": str(workdir / "prometheus"),
            "WORKER_PROCESSES": "1",
            "WORKER_THREADS": "4",
            "LOG_FORMAT": "json",
            # A test fleet runs with non-default admin tokens, which makes it a deployment: it must
            # bring a signing secret of its own (a random one, so no token outlives the fleet).
            "TOKEN_SECRET": secrets.token_urlsafe(32),
            # Every simulated customer signs in from 127.0.0.1, and the fuzzing sends wrong passwords.
            "AUTH_MAX_FAILURES_PER_ACCOUNT": "1000000",
            "AUTH_MAX_FAILURES_PER_ADDRESS": "1000000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(provider_environment(provider, env["PSP_URL"]))
    env.update(overrides)
    return env
