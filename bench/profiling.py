"""``--profile``: py-spy flame graphs of the gateway and a worker process under load.

py-spy (in the dev extras) samples a running process from outside, without changing it:
``--nonblocking`` so the process is not paused for each sample, and only the thread holding
the GIL (``--gil``), since a process's many threads waiting on sockets would otherwise crowd out
where its CPU goes. Each recording covers one measured window and lands as an SVG flame graph
(``flame-<role>.svg``, e.g. ``bench/results/flame-web.svg``; the expiry phase's are
``flame-expiry-worker.svg``). The worker recorded is the busiest of dramatiq's worker processes
at the start of the window. py-spy costs CPU of its own on the same cores: figures of a run with
``--profile`` are a little lower than without.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from bench.procs import Roles


def _py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def _busiest(processes: list[psutil.Process]) -> psutil.Process | None:
    """The process with the most CPU time so far (dramatiq's main process only forwards work)."""
    best, best_cpu = None, -1.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        if times.user + times.system > best_cpu:
            best, best_cpu = process, times.user + times.system
    return best


class Profiler:
    """Records one flame graph per role (``web``, ``worker``) over a window."""

    def __init__(
        self, fleet_roles: Roles, folder: Path, roles: tuple[str, ...] = ("web", "worker"), suffix: str = ""
    ):
        self.fleet_roles, self.folder, self.roles, self.suffix = fleet_roles, folder, roles, suffix
        self.running: list[tuple[subprocess.Popen, Path]] = []
        self.written: list[str] = []
        if _py_spy() is None:
            raise RuntimeError("--profile needs py-spy (in the dev extras: scripts/bootstrap installs it)")

    def start(self, phase: str, seconds: float, roles: tuple[str, ...] | None = None) -> None:
        """Record each role's process for ``seconds`` (in the background); ``phase`` names the files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fleet = self.fleet_roles()
        for role in roles or self.roles:
            processes = fleet.get(role, [])
            if role == "worker" and len(processes) > 1:
                processes = processes[1:]  # dramatiq's worker processes, not the main one
            target = _busiest(processes)
            if target is None:
                continue
            prefix = "" if phase == "e2e" else f"{phase}-"
            path = self.folder / f"flame-{prefix}{role}{self.suffix}.svg"
            log = open(path.with_suffix(".log"), "wb")  # noqa: SIM115 (py-spy writes to it until stopped)
            self.running.append(
                (
                    subprocess.Popen(
                        [
                            _py_spy(),
                            "record",
                            "--pid",
                            str(target.pid),
                            "--duration",
                            str(max(int(seconds), 1)),
                            "--rate",
                            "100",
                            "--gil",
                            "--nonblocking",
                            "--format",
                            "flamegraph",
                            "--output",
                            str(path),
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                    path,
                )
            )
            log.close()

    def wait(self) -> list[str]:
        """Wait for the recordings; the flame graphs written."""
        for process, path in self.running:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log = path.with_suffix(".log")
            if path.exists() and path.stat().st_size:
                self.written.append(str(path))
                log.unlink(missing_ok=True)
            else:
                print(
                    f"profile: no flame graph for {path.name}; py-spy said: "
                    f"{log.read_text(errors='replace')[-500:]}",
                    file=sys.stderr,
                )
        self.running = []
        return self.written
