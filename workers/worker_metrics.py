"""The workers' Prometheus endpoint: its port and folder, files of dead processes, the server.

dramatiq's Prometheus middleware has every worker process count into files of one folder
(prometheus_client's multiprocess mode) and serves them from a process that dramatiq's main
process forks. Left to its defaults that is port 9191 and ``$TMPDIR/dramatiq-prometheus`` for
every fleet on a machine, a server that dies with a traceback when the port is taken, and a
folder that keeps the files of every process that ever ran (dramatiq creates it, never clears
it). Here instead:

- the port is ``WORKER_METRICS_PORT`` (the worker's own ``PORT`` + 11 unless set; 0: no endpoint)
  and the folder is named after it, so two fleets on one machine share neither;
- a port that is taken is a warning: the workers run on without the endpoint;
- each worker process, as it starts, removes the files of processes that are no longer alive.

dramatiq's own variables ``dramatiq_prom_port`` and ``dramatiq_prom_db``, when set, win (as
``dramatiq_worker_timeout`` does in :mod:`workers.broker`); ``dramatiq_prom_host`` (0.0.0.0) too.

Nothing here imports prometheus_client at module level: it must first see the folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import structlog

from config import Settings, settings_or_exit
from config.logging import configure_logging

log = structlog.get_logger(__name__)

#: prometheus_client names its files ``<kind>_<pid>.db`` (gauges ``gauge_<mode>_<pid>.db``).
_PROCESS_FILE = re.compile(r"^[a-z_]+_(\d+)\.db$")


def metrics_port(settings: Settings, environ: Mapping[str, str] = os.environ) -> int:
    """The port the endpoint listens on; 0 when it is turned off."""
    if environ.get("dramatiq_prom_port"):
        return int(environ["dramatiq_prom_port"])
    return settings.worker_metrics_port or 0


def metrics_dir(settings: Settings, environ: Mapping[str, str] = os.environ) -> Path:
    """The folder the worker processes count into and the endpoint reads."""
    if environ.get("dramatiq_prom_db"):
        return Path(environ["dramatiq_prom_db"])
    return Path(tempfile.gettempdir()) / f"orders-worker-metrics-{metrics_port(settings, environ)}"


def prepare(settings: Settings) -> Path:
    """Point dramatiq and prometheus_client at this fleet's folder and drop dead processes' files.

    Must run in each worker process before prometheus_client or dramatiq's Prometheus middleware
    is imported: both read the folder from the environment once, at import.
    """
    directory = metrics_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["dramatiq_prom_db"] = str(directory)  # noqa: SIM112 (dramatiq reads it in lower case)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    remove_dead_process_files(directory)
    return directory


def remove_dead_process_files(directory: Path) -> list[str]:
    """Delete the counter, gauge and histogram files of processes that are gone; return their names.

    prometheus_client's ``mark_process_dead`` (which dramatiq calls when a worker shuts down) only
    removes the live-gauge files of a process that exits cleanly: counters, histograms and plain
    gauges (shown with a ``pid`` label) of every earlier process would be exported for ever, and a
    killed process leaves all of its files. Files of live processes, of this fleet or another
    sharing the folder, are kept.
    """
    removed = []
    for path in directory.glob("*.db"):
        match = _PROCESS_FILE.match(path.name)
        if match is None or _alive(int(match.group(1))):
            continue
        path.unlink(missing_ok=True)
        removed.append(path.name)
    if removed:
        log.info("worker.metrics_files_removed", directory=str(directory), files=sorted(removed))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def serve() -> int:
    """dramatiq fork function: serve the worker processes' metrics until dramatiq stops it.

    Runs in a process forked from dramatiq's main process, which never loaded the broker module,
    so it reads the settings itself. A port that cannot be bound is logged and ends only this
    process (dramatiq's main process does not wait for its forks): the workers keep working.
    """
    settings = settings_or_exit()
    configure_logging(settings, "worker")
    port = metrics_port(settings)
    if port == 0:
        log.info("worker.metrics_off")
        return 0
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    directory = metrics_dir(settings)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    host = os.environ.get("dramatiq_prom_host", "0.0.0.0")  # noqa: SIM112 (dramatiq's own name)
    try:
        _, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        log.warning(
            "worker.metrics_unavailable",
            host=host,
            port=port,
            error=str(error),
            hint="another process holds the port: set WORKER_METRICS_PORT to a free one "
            "(or 0 for no endpoint); the workers run on without it",
        )
        return 0
    log.info("worker.metrics_listening", host=host, port=port, directory=str(directory))
    thread.join()
    return 0
