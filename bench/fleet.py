"""The fleet under measurement: each Procfile.dev process started directly, as a PaaS does.

honcho (``scripts/run``, the e2e tests) reads every process's output through a pipe and writes
it, prefixed, to its own: a process of its own that costs CPU and is not part of production.
Here each process of ``Procfile.dev`` runs ``/bin/sh -c "exec <command>"`` in a process group of
its own, with its output in ``<log dir>/<name>.log`` (JSON lines at INFO), so every CPU second
measured belongs to the fleet. Like honcho (and a PaaS's ``$PORT``), each process gets a ``PORT``
of its own: the fleet's, then 100 more per process in Procfile order.

A :class:`FleetTree` says where the fleet comes from: the checkout whose Procfile and packages
run (this one, or an earlier commit checked out by :mod:`bench.baseline`) and the virtualenv
whose console scripts the Procfile's commands name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.procs import process_tree
from tests.support.fleet import ROOT, FleetUrls, answers_ok
from tests.support.processes import procfile_command

#: The Procfile.dev processes, in their file's order (release runs before them, see ``release``).
PROCESSES = ("web", "worker", "scheduler", "psp", "mail")
#: How long SIGTERMed processes get before SIGKILL (a PaaS waits about 30 s; each stops in 10 s).
STOP_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class FleetTree:
    """A checkout of the project and the virtualenv its fleet runs from."""

    root: Path
    bin: Path
    label: str

    def command(self, name: str, procfile: str = "Procfile.dev") -> str:
        # An absolute path: procfile_command joins it to this checkout's ROOT, which it replaces.
        return procfile_command(name, str(self.root / procfile))

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """``env`` with this tree's console scripts first on PATH."""
        rest = [
            entry
            for entry in env.get("PATH", os.environ.get("PATH", "")).split(os.pathsep)
            if entry and entry != str(self.bin)
        ]
        return {**env, "PATH": os.pathsep.join([str(self.bin), *rest])}


def current_tree() -> FleetTree:
    """This checkout, with the virtualenv the bench itself runs in."""
    return FleetTree(root=ROOT, bin=Path(sys.executable).parent, label="current")


def release(tree: FleetTree, env: dict[str, str], log_path: Path, timeout: float = 300.0) -> None:
    """Run the tree's ``release`` process (Procfile): create and migrate ``DATABASE_URL``."""
    with open(log_path, "ab") as log:
        finished = subprocess.run(
            ["/bin/sh", "-c", f"exec {tree.command('release', 'Procfile')}"],
            cwd=tree.root,
            env=tree.environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if finished.returncode != 0:
        raise RuntimeError(
            f"release failed ({finished.returncode}); see {log_path}:\n"
            f"{log_path.read_text(errors='replace')[-3000:]}"
        )


@dataclass
class DirectFleet(FleetUrls):
    """The Procfile.dev processes of ``tree``, each started on its own and logging to its own file."""

    env: dict[str, str]
    log_dir: Path
    tree: FleetTree = field(default_factory=current_tree)
    names: tuple[str, ...] = PROCESSES
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _environment(self, index: int) -> dict[str, str]:
        env = self.tree.environment(self.env)
        env["PORT"] = str(int(self.env["PORT"]) + 100 * index)
        # What production runs with (the defaults, stated so a caller's environment cannot change them).
        env.update(LOG_FORMAT="json", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
        return env

    def start(self, timeout: float = 60.0) -> None:
        """Start every process and wait until the HTTP ones answer."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(self.names):
            with open(self.log_path(name), "ab") as log:
                self.processes[name] = subprocess.Popen(
                    ["/bin/sh", "-c", f"exec {self.tree.command(name)}"],
                    cwd=self.tree.root,
                    env=self._environment(index),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + timeout
        while not all(answers_ok(url) for url in self.health_probes):
            exited = [name for name, process in self.processes.items() if process.poll() is not None]
            if exited or time.monotonic() > deadline:
                self.stop()
                culprit = exited[0] if exited else "web"
                raise RuntimeError(
                    f"fleet did not start ({', '.join(exited) or 'timeout'}); "
                    f"see {self.log_path(culprit)}:\n"
                    f"{self.log_path(culprit).read_text(errors='replace')[-4000:]}"
                )
            time.sleep(0.2)

    def roles(self) -> dict[str, list[psutil.Process]]:
        """Each process by its Procfile name, with everything it started (dramatiq's worker processes)."""
        return {name: process_tree(popen.pid) for name, popen in self.processes.items()}

    def stop(self) -> dict[str, int]:
        """SIGTERM each process, SIGKILL its group when it is not gone in time (or left children);
        the exit status of each (negative: the signal that ended it)."""
        for process in self.processes.values():
            if process.poll() is None:
                # The program only: dramatiq's main process passes the signal on to its workers.
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # what is still there, including strays
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
        codes = {name: process.returncode for name, process in self.processes.items()}
        self.processes = {}
        return codes
