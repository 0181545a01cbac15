"""Running the Procfile.dev processes like a PaaS would: each restarted when it dies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support.processes import procfile_command

ROOT = Path(__file__).resolve().parents[2]
#: How long a PaaS typically waits before starting a crashed process again.
RESTART_DELAY_SECONDS = 0.5


@dataclass
class Supervised:
    name: str
    command: str
    log_path: Path
    process: subprocess.Popen | None = None


@dataclass
class Supervisor:
    """Starts each named process and restarts it whenever it exits, until :meth:`stop`.

    A name is a Procfile.dev process (``web``), or a further instance of one (``web-2``, ``worker-2``:
    the part before ``-``) with environment ``overrides`` of its own, e.g. another port or broker node.
    """

    names: list[str]
    env: dict[str, str]
    log_dir: Path
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    restarts: Counter = field(default_factory=Counter)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes = {
            name: Supervised(name, procfile_command(name.split("-")[0]), self.log_dir / f"{name}.log")
            for name in self.names
        }
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def _spawn(self, supervised: Supervised) -> None:
        with open(supervised.log_path, "ab") as log:
            supervised.process = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {supervised.command}"],
                cwd=ROOT,
                env={**self.env, **self.overrides.get(supervised.name, {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> None:
        for supervised in self.processes.values():
            self._spawn(supervised)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            for supervised in self.processes.values():
                if supervised.process is not None and supervised.process.poll() is not None:
                    if self._stopping.is_set():
                        return
                    time.sleep(RESTART_DELAY_SECONDS)
                    self.restarts[supervised.name] += 1
                    self._spawn(supervised)
            time.sleep(0.1)

    def kill(self, name: str) -> int:
        """SIGKILL process ``name`` (its whole group); returns the pid killed."""
        process = self.processes[name].process
        os.killpg(process.pid, signal.SIGKILL)
        return process.pid

    def kill_one_worker_process(self, rng: random.Random) -> int | None:
        """SIGKILL one of dramatiq's worker processes (a child of a `worker` command, any instance)."""
        children = []
        for name, supervised in self.processes.items():
            if name.split("-")[0] != "worker" or supervised.process is None:
                continue
            try:
                children += psutil.Process(supervised.process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
        workers = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "dramatiq" in " ".join(child.cmdline()):
                    workers.append(child)
            except psutil.Error:
                continue  # gone meanwhile (the previous kill is still being cleaned up)
        if not workers:
            return None
        victim = rng.choice(workers)
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.Error:
            return None
        return victim.pid

    def stop(self) -> None:
        """Stop watching, SIGTERM everything, SIGKILL what is still there after a grace period."""
        self._stopping.set()
        self._thread.join(timeout=5)
        for supervised in self.processes.values():
            if supervised.process is not None and supervised.process.poll() is None:
                os.killpg(supervised.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for supervised in self.processes.values():
            if supervised.process is None:
                continue
            try:
                supervised.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(supervised.process.pid, signal.SIGKILL)
                supervised.process.wait()
