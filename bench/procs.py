"""Watching the processes of the run: CPU time per role and the workers' memory.

Roles are the fleet's Procfile processes (found under honcho by their command line), the
services (mariadbd, RabbitMQ's beam.smp, redis-server) and the bench itself. A background thread
samples the resident memory of every process under the fleet's ``dramatiq`` command twice a
second and keeps the peak per phase.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psutil

#: Procfile role by a word of the command honcho runs for it.
_ROLES = {"orders-web": "web", "dramatiq": "worker", "orders-scheduler": "scheduler",
          "orders-psp": "psp", "orders-mail": "mail"}
_SERVICES = {"mariadbd": "mariadb", "mysqld": "mariadb", "beam.smp": "rabbitmq", "redis-server": "redis"}


def _role_of(process: psutil.Process) -> str | None:
    try:
        words = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for word, role in _ROLES.items():
        if word in words:
            return role
    return None


def fleet_processes(honcho_pid: int) -> dict[str, list[psutil.Process]]:
    """Every process of the fleet by role (a role's shell, its program and that program's children)."""
    roles: dict[str, list[psutil.Process]] = {}
    try:
        honcho = psutil.Process(honcho_pid)
        children = honcho.children(recursive=True)
    except psutil.NoSuchProcess:
        return roles
    for child in children:
        role = _role_of(child)
        if role is None:
            # A program's own children (dramatiq's worker processes) name their parent's role.
            try:
                parent = child.parent()
                role = _role_of(parent) if parent is not None else None
            except psutil.NoSuchProcess:
                role = None
        if role is None:
            role = "honcho"
        roles.setdefault(role, []).append(child)
    roles.setdefault("honcho", []).append(honcho)
    return roles


def service_processes() -> dict[str, list[psutil.Process]]:
    roles: dict[str, list[psutil.Process]] = {}
    for process in psutil.process_iter(["name"]):
        role = _SERVICES.get(process.info["name"] or "")
        if role:
            roles.setdefault(role, []).append(process)
    return roles


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


class CpuMeter:
    """CPU seconds used per role between :meth:`start` and :meth:`stop` (in cores: seconds / wall)."""

    def __init__(self, honcho_pid: int | None):
        self.honcho_pid = honcho_pid

    def _snapshot(self) -> dict[str, float]:
        roles = fleet_processes(self.honcho_pid) if self.honcho_pid else {}
        roles.update(service_processes())
        roles["bench"] = [psutil.Process(os.getpid())]
        return {role: _cpu_seconds(processes) for role, processes in roles.items()}

    def start(self) -> None:
        self._before, self._started = self._snapshot(), time.monotonic()

    def stop(self) -> dict[str, float]:
        after, wall = self._snapshot(), time.monotonic() - self._started
        cores = {role: round((after[role] - self._before.get(role, 0.0)) / wall, 2)
                 for role in after if wall > 0}
        return dict(sorted(cores.items(), key=lambda item: -item[1]))


@dataclass
class MemoryWatch:
    """Peak resident memory of the fleet's worker processes, overall and per phase."""

    honcho_pid: int
    interval: float = 0.5
    peak_total_mb: float = 0.0
    peak_process_mb: float = 0.0
    phase_peaks: dict[str, float] = field(default_factory=dict)
    phase: str = "start"

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> float:
        workers = fleet_processes(self.honcho_pid).get("worker", [])
        sizes = []
        for process in workers:
            try:
                sizes.append(process.memory_info().rss / 2**20)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        total = sum(sizes)
        self.peak_total_mb = max(self.peak_total_mb, total)
        self.peak_process_mb = max([self.peak_process_mb, *sizes])
        self.phase_peaks[self.phase] = max(self.phase_peaks.get(self.phase, 0.0), total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
