"""``--baseline REV``: the fleet of an earlier commit, measured by this checkout's bench.

REV is checked out into a temporary ``git worktree`` (detached, removed at the end of the run)
and gets a virtualenv of its own from its own ``scripts/bootstrap``: its Procfile, its packages
and its dependency versions, whatever changed since, while every line of measuring code (load,
counters, tables) is this checkout's. Its database is created and migrated by its own
``release`` process. Making the virtualenv takes a few tens of seconds (pip's cache makes the
second time quicker); reusing this checkout's would be quicker but wrong as soon as REV's
dependencies differ, and an editable install points at one checkout only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.fleet import FleetTree
from tests.support.fleet import ROOT


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def describe_current() -> str:
    """This checkout's short commit, ``+changes`` when the working tree differs from it (results
    of earlier runs aside)."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results")
    except (OSError, subprocess.CalledProcessError):
        return "current"
    return f"{commit}+changes" if dirty else commit


@contextmanager
def checked_out(rev: str, log_path: Path, log) -> Iterator[FleetTree]:
    """REV in a temporary worktree with its own virtualenv, for the block; removed afterwards."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    short = _git("rev-parse", "--short", commit)
    folder = Path(tempfile.mkdtemp(prefix=f"orders-bench-{short}-"))
    root = folder / "tree"
    _git("worktree", "add", "--detach", str(root), commit)
    try:
        log(f"baseline: {short} checked out in {root}; making its virtualenv (scripts/bootstrap)")
        with open(log_path, "ab") as output:
            finished = subprocess.run(
                [str(root / "scripts" / "bootstrap")],
                cwd=root,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if finished.returncode != 0:
            raise RuntimeError(
                f"baseline: scripts/bootstrap of {short} failed; see {log_path}:\n"
                f"{log_path.read_text(errors='replace')[-3000:]}"
            )
        yield FleetTree(root=root, bin=root / ".venv" / "bin", label=short)
    finally:
        try:
            _git("worktree", "remove", "--force", str(root))
        except subprocess.CalledProcessError:
            shutil.rmtree(root, ignore_errors=True)
            _git("worktree", "prune")
        shutil.rmtree(folder, ignore_errors=True)
