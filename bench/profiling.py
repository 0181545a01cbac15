"""``--profile``: py-spy profiles of the fleet's busy processes during a measured window.

py-spy (``pip install py-spy``) samples the web and worker processes from outside, without
changing them, and only the thread holding the GIL (``--gil``): a process's many threads waiting
on sockets would otherwise crowd out where its CPU goes. The raw collapsed stacks (one
``stack count`` line per distinct stack, the input of flamegraph.pl and speedscope) land in the
profile folder, one file per process and phase.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.procs import Roles


def _py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, fleet_roles: Roles, folder: Path, roles: tuple[str, ...] = ("web", "worker")):
        self.fleet_roles, self.folder, self.roles = fleet_roles, folder, roles
        self.running: list[subprocess.Popen] = []

    def start(self, phase: str, seconds: float) -> None:
        py_spy = _py_spy()
        if py_spy is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        self.folder.mkdir(parents=True, exist_ok=True)
        roles = self.fleet_roles()
        for role in self.roles:
            for process in roles.get(role, []):
                target = self.folder / f"{phase}-{role}-{process.pid}.txt"
                self.running.append(subprocess.Popen(
                    [py_spy, "record", "--pid", str(process.pid), "--duration", str(int(seconds)),
                     "--rate", "100", "--gil", "--format", "raw", "--output", str(target)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def wait(self) -> None:
        for process in self.running:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
        self.running = []
