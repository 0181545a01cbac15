"""A worker process passes the first SIGTERM to dramatiq and ignores the ones that follow."""

from __future__ import annotations

import signal

import pytest

from workers.shutdown import stop_once_on_sigterm


@pytest.fixture
def restore_sigterm():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def dramatiq_like_handler(calls: list[int]):
    """A stand-in for the handler dramatiq's CLI installs in a worker process (named as it is)."""

    def termhandler(signum, frame):
        calls.append(signum)

    termhandler.__module__ = "dramatiq.cli"
    termhandler.__qualname__ = "worker_process.<locals>.termhandler"
    return termhandler


def test_second_and_later_sigterms_do_not_reach_dramatiq(restore_sigterm):
    calls: list[int] = []
    signal.signal(signal.SIGTERM, dramatiq_like_handler(calls))

    assert stop_once_on_sigterm()
    for _ in range(3):
        signal.raise_signal(signal.SIGTERM)

    assert calls == [signal.SIGTERM]


def test_other_handlers_are_left_alone(restore_sigterm):
    calls: list[int] = []

    def termhandler(signum, frame):  # not dramatiq's worker-process handler
        calls.append(signum)

    signal.signal(signal.SIGTERM, termhandler)
    assert not stop_once_on_sigterm()
    assert signal.getsignal(signal.SIGTERM) is termhandler
