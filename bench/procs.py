"""Watching the processes of the run: CPU time per role and the workers' memory.

Roles are the fleet's Procfile processes (:meth:`bench.fleet.DirectFleet.roles`: each program
with the processes it started, so ``worker`` is dramatiq's main process and its worker
processes), the services (mariadbd, RabbitMQ's beam.smp, redis-server) and the bench itself.
The sandbox payment provider and mail sink (``psp``, ``mail``) stand for systems outside the
fleet: measured, but not part of :func:`fleet_total`. A background thread samples the resident
memory of the ``worker`` processes twice a second and keeps the peak per phase.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

#: The fleet's processes by role (a callable, since processes come and go).
Roles = Callable[[], dict[str, list[psutil.Process]]]

_SERVICES = {"mariadbd": "mariadb", "mysqld": "mariadb", "beam.smp": "rabbitmq", "redis-server": "redis"}
#: Roles in the order the tables list them: the fleet, the servers, then what is not the fleet's.
FLEET_ROLES = ("web", "worker", "scheduler")
SERVER_ROLES = ("mariadb", "rabbitmq", "redis")
#: Stand-ins for the payment provider and the mail relay: systems outside the fleet.
OUTSIDE_ROLES = ("psp", "mail")
ROLE_ORDER = (*FLEET_ROLES, *SERVER_ROLES, *OUTSIDE_ROLES, "bench")


def fleet_total(values: dict[str, float]) -> float:
    """The sum over the fleet's processes and the servers (not psp, mail or the bench)."""
    return sum(value for role, value in values.items() if role in FLEET_ROLES + SERVER_ROLES)


def in_role_order(values: dict[str, float]) -> dict[str, float]:
    known = [role for role in ROLE_ORDER if role in values]
    return {role: values[role] for role in known + sorted(set(values) - set(known))}


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and everything it started (dramatiq's worker processes); [] once gone."""
    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


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
    """CPU seconds used per role between :meth:`start` and :meth:`stop`.

    :meth:`stop` returns cores (seconds / wall); the seconds themselves stay in ``seconds``
    and the wall time in ``wall_s``, for figures per order.
    """

    def __init__(self, fleet_roles: Roles | None):
        self.fleet_roles = fleet_roles
        self.seconds: dict[str, float] = {}
        self.wall_s = 0.0

    def _snapshot(self) -> dict[str, float]:
        roles = self.fleet_roles() if self.fleet_roles else {}
        roles.update(service_processes())
        roles["bench"] = [psutil.Process(os.getpid())]
        return {role: _cpu_seconds(processes) for role, processes in roles.items()}

    def start(self) -> None:
        self._before, self._started = self._snapshot(), time.monotonic()

    def stop(self) -> dict[str, float]:
        after, self.wall_s = self._snapshot(), time.monotonic() - self._started
        self.seconds = {role: max(after[role] - self._before.get(role, 0.0), 0.0) for role in after}
        cores = {
            role: round(seconds / self.wall_s, 2) for role, seconds in self.seconds.items() if self.wall_s > 0
        }
        return dict(sorted(cores.items(), key=lambda item: -item[1]))

    def ms_per(self, count: int) -> dict[str, float]:
        """CPU milliseconds per unit of work (``count`` of them done between start and stop), by role."""
        if not count:
            return {}
        return in_role_order(
            {role: round(seconds * 1000 / count, 1) for role, seconds in self.seconds.items()}
        )


@dataclass
class MemoryWatch:
    """Peak resident memory of the fleet's worker processes, overall and per phase."""

    fleet_roles: Roles
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
        workers = self.fleet_roles().get("worker", [])
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
