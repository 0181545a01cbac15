"""Starting one fleet process (as the Procfile does) on its own, to signal it in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.fleet import ROOT


def procfile_command(name: str, procfile: str = "Procfile.dev") -> str:
    """The command line of process ``name`` in the Procfile."""
    for line in (ROOT / procfile).read_text().splitlines():
        process, sep, command = line.partition(":")
        if sep and process.strip() == name:
            return command.strip()
    raise KeyError(f"no process {name!r} in {procfile}")


def start(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Run the Procfile's ``name`` command in a process group of its own, logging to ``log_path``."""
    log = open(log_path, "ab")  # noqa: SIM115 (the process writes to it for its whole life)
    return subprocess.Popen(
        ["/bin/sh", "-c", f"exec {procfile_command(name)}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@contextmanager
def running(name: str, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """The Procfile's ``name`` running for the block; SIGTERMed (then SIGKILLed) after it."""
    process = start(name, env, log_path)
    try:
        yield process
    finally:
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()


def signal_group(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to the process and everything it started."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def python_bin() -> str:
    return str(Path(sys.executable).parent)
