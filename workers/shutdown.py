"""A worker process stops once, however many SIGTERMs reach it.

A PaaS stops a dyno by sending SIGTERM to every process in it, and dramatiq's main process
forwards the SIGTERM it gets to its worker processes as well: each worker process receives two.
dramatiq treats a second signal as "kill now" and raises ``SystemExit`` in the middle of its
graceful stop, leaving the event loop thread alive (the process hangs until SIGKILL) and the
outbox publisher closed under steps still running. The stop is bounded by
``--worker-shutdown-timeout`` instead (Procfile), and the platform's SIGKILL remains the last word.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

# The qualified name of the handler dramatiq's CLI installs in each worker process.
_DRAMATIQ_WORKER_HANDLER = "worker_process.<locals>.termhandler"


def stop_once_on_sigterm() -> bool:
    """In a dramatiq worker process, pass the first SIGTERM on to dramatiq and ignore the rest.

    Returns whether the handler was installed (elsewhere, e.g. in tests or the main process,
    the current handler is left alone). Must run on the main thread, as any signal setup.
    """
    original = signal.getsignal(signal.SIGTERM)
    if not (
        callable(original)
        and getattr(original, "__module__", "") == "dramatiq.cli"
        and getattr(original, "__qualname__", "") == _DRAMATIQ_WORKER_HANDLER
    ):
        return False
    signal.signal(signal.SIGTERM, _first_only(original))
    return True


def _first_only(
    handler: Callable[[int, FrameType | None], object],
) -> Callable[[int, FrameType | None], None]:
    stopping = False

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            log.info("worker.stop_already_under_way")
            return
        stopping = True
        handler(signum, frame)

    return on_sigterm
