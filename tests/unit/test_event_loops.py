"""The gateway, the scheduler and the workers' event-loop thread run on uvloop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import uvloop

import gateway.main
import schedules.main

ROOT = Path(__file__).resolve().parents[2]

#: A worker process as far as dramatiq's AsyncIO middleware: it loads workers.broker (as
#: `dramatiq workers.broker actors` does), boots the middleware and runs a step-like coroutine.
WORKER_PROBE = """
import asyncio, json
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import AsyncIO
import workers.broker

broker = workers.broker.broker
[middleware] = [m for m in broker.middleware if isinstance(m, AsyncIO)]
middleware.before_worker_boot(broker, None)

async def running_loop():
    loop = type(asyncio.get_running_loop())
    return f"{loop.__module__}.{loop.__qualname__}"

try:
    print(json.dumps({"running": get_event_loop_thread().run_coroutine(running_loop())}))
finally:
    middleware.after_worker_shutdown(broker, None)
"""


def test_the_event_loop_thread_of_a_worker_runs_uvloop(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LOG_FORMAT": "json",
        "dramatiq_prom_db": str(tmp_path / "prometheus"),
        "dramatiq_prom_port": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"running": "uvloop.Loop"}
    # dramatiq's own lines about its loop thread come out as the fleet's JSON lines too.
    events = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert "Event loop is running." in events


@pytest.fixture
def keep_signal_handlers():
    """main() installs SIGTERM/SIGINT handlers on its loop; the test run keeps its own."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize(("module", "server"), [(gateway.main, "serve"), (schedules.main, "run")])
def test_the_gateway_and_the_scheduler_run_on_uvloop(module, server, monkeypatch, keep_signal_handlers):
    loops = []

    async def fake_server(settings, stop):
        loops.append(type(asyncio.get_running_loop()))

    monkeypatch.setattr(module, server, fake_server)
    monkeypatch.setattr(module, "configure_logging", lambda settings, process: None)

    assert module.main() == 0
    assert loops == [uvloop.Loop]
