"""Every line is one JSON object with the same fields, whether structlog or ``logging`` wrote it."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from tqdm.contrib.logging import logging_redirect_tqdm

import config.logging as fleet_logging
from config import load_settings
from config.logging import LineFields, configure_logging

FIELDS = {"event", "level", "logger", "timestamp", "process"}
BOUND = {"order_id": "order-1", "message_id": "message-1", "actor": "reserve"}


class PipeLike:
    """A stream without a byte buffer, as dramatiq's worker processes have for stderr: each write
    is sent to the main process as one message."""

    def __init__(self):
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@pytest.fixture(autouse=True)
def no_bound_context():
    """Each test starts with no context bound (another test may have left some) and leaves it as found."""
    found = structlog.contextvars.get_contextvars()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**found)


@pytest.fixture
def restore_logging():
    """Puts back what configure_logging changes: root handlers and levels, structlog's config."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("aiohttp.access", "pika", "stripe")}
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)
    structlog.configure(**config)


class Stderr:
    """What configure_logging is given as sys.stderr: text over a byte buffer, as a real one is."""

    def __init__(self, stream=None):
        self.stream = stream or io.TextIOWrapper(io.BytesIO(), encoding="utf-8", line_buffering=True)

    def configure(self, process: str = "worker", **environ: str) -> None:
        settings = load_settings({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", **environ})
        # pytest puts its own sys.stderr back around each test phase: swapped here, just for this.
        saved, sys.stderr = sys.stderr, self.stream
        try:
            configure_logging(settings, process)
        finally:
            sys.stderr = saved

    def getvalue(self) -> bytes:
        return self.stream.buffer.getvalue()


@pytest.fixture
def stderr(restore_logging) -> Stderr:
    return Stderr()


def json_lines(raw: bytes) -> list[dict]:
    text = raw.decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def assert_recent_utc(stamp: str) -> None:
    assert stamp.endswith("Z")
    at = datetime.fromisoformat(stamp.removesuffix("Z")).replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=1)


def test_a_structlog_line_has_every_field_and_the_bound_context(stderr):
    stderr.configure()
    log = structlog.get_logger("actors.reserve")

    with structlog.contextvars.bound_contextvars(**BOUND):
        log.info("reserve.held", sku="SKU-1", quantity=3)
        log.debug("reserve.hidden")

    [line] = json_lines(stderr.getvalue())
    assert set(line) == FIELDS | set(BOUND) | {"sku", "quantity"}
    assert line | {"timestamp": None} == {
        "event": "reserve.held",
        "level": "info",
        "logger": "actors.reserve",
        "process": "worker",
        "timestamp": None,
        "sku": "SKU-1",
        "quantity": 3,
        **BOUND,
    }
    assert_recent_utc(line["timestamp"])


def test_a_standard_library_line_has_the_same_fields(stderr):
    stderr.configure()

    with structlog.contextvars.bound_contextvars(**BOUND):
        logging.getLogger("dramatiq.worker.WorkerThread").info("Worker thread %s is ready", 3)
        logging.getLogger("aiohttp.access").info("GET / 200")  # held back below WARNING
        logging.getLogger("stripe").info("Request to Stripe api")  # likewise

    [line] = json_lines(stderr.getvalue())
    assert set(line) == FIELDS | set(BOUND)
    assert (line["event"], line["level"], line["logger"], line["process"]) == (
        "Worker thread 3 is ready",
        "info",
        "dramatiq.worker.WorkerThread",
        "worker",
    )
    assert {key: line[key] for key in BOUND} == BOUND
    assert_recent_utc(line["timestamp"])


def test_exceptions_come_as_text_from_either_kind_of_logger(stderr):
    stderr.configure()
    log = structlog.get_logger("actors.pay")

    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.exception("pay.failed", attempt=2)
        log.warning("pay.retrying", exc_info=True)
        logging.getLogger("dramatiq.worker").exception("Failed to process message")

    lines = json_lines(stderr.getvalue())
    assert [(line["event"], line["level"]) for line in lines] == [
        ("pay.failed", "error"),
        ("pay.retrying", "warning"),
        ("Failed to process message", "error"),
    ]
    for line in lines:
        assert line["exception"].startswith("Traceback (most recent call last):")
        assert line["exception"].endswith("ZeroDivisionError: division by zero")
        assert "exc_info" not in line


def test_a_logger_without_a_name_is_named_after_the_calling_module(stderr):
    stderr.configure()

    structlog.get_logger().info("anonymous")

    [line] = json_lines(stderr.getvalue())
    assert line["logger"] == __name__


def test_values_json_cannot_hold_natively_still_make_a_line(stderr):
    stderr.configure()
    log = structlog.get_logger("probe")

    log.info("odd", keys={2: "two"}, big=2**70, things={1})

    [line] = json_lines(stderr.getvalue())
    assert (line["keys"], line["big"], line["things"]) == ({"2": "two"}, 2**70, "{1}")


def test_threads_never_tear_each_others_lines(restore_logging):
    stream = PipeLike()
    Stderr(stream).configure()
    log = structlog.get_logger("actors.reserve")
    foreign = logging.getLogger("dramatiq.worker")

    def work(n: int) -> None:
        with structlog.contextvars.bound_contextvars(order_id=f"order-{n}"):
            for i in range(200):
                log.info("reserve.held", n=n, i=i, padding="x" * 500)
                foreign.info("thread %d line %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(stream.writes) == 8 * 200 * 2
    for write in stream.writes:  # each write is one whole line
        assert write.endswith("\n") and write.count("\n") == 1
        line = json.loads(write)
        n = line["n"] if "n" in line else int(line["event"].split()[1])
        assert line["order_id"] == f"order-{n}"


def test_lines_go_through_tqdm_while_it_redirects_logging(stderr, monkeypatch):
    # `orders-admin archive` draws a progress bar on stderr; log lines must go through tqdm.
    stderr.configure("admin")
    log = structlog.get_logger("ops.maintenance")
    monkeypatch.setattr(sys, "stderr", stderr.stream)  # tqdm swaps the handlers writing to sys.stderr

    with logging_redirect_tqdm():
        [tqdm_handler] = [
            handler for handler in logging.getLogger().handlers if type(handler).__module__.startswith("tqdm")
        ]
        through_tqdm: list[str] = []
        tqdm_handler.emit = lambda record, emit=tqdm_handler.emit: (
            through_tqdm.append(record.msg),
            emit(record),
        )
        log.info("archive.batch", moved=50)
    log.info("archive.done")

    assert [json.loads(line)["event"] for line in through_tqdm] == ["archive.batch"]
    assert [line["event"] for line in json_lines(stderr.getvalue())] == ["archive.batch", "archive.done"]


def test_the_console_format_writes_one_readable_line(stderr):
    stderr.configure(LOG_FORMAT="console")

    with structlog.contextvars.bound_contextvars(order_id="order-1"):
        structlog.get_logger("actors.reserve").info("reserve.held", sku="SKU-1")
        logging.getLogger("dramatiq.worker").warning("slow")

    first, second = stderr.getvalue().decode().splitlines()
    assert "reserve.held" in first and "order_id=order-1" in first and "sku=SKU-1" in first
    assert "slow" in second and "order_id=order-1" in second


def test_the_merged_context_is_structlogs():
    with structlog.contextvars.bound_contextvars(order_id="order-1", message_id="message-1", actor="pay"):
        structlog.contextvars.unbind_contextvars("actor")
        ours = fleet_logging.merge_contextvars(None, "info", {"event": "e", "message_id": "own"})
        theirs = structlog.contextvars.merge_contextvars(None, "info", {"event": "e", "message_id": "own"})

    assert ours == theirs == {"event": "e", "message_id": "own", "order_id": "order-1"}


@pytest.mark.parametrize(
    "ns", [1_700_000_000_123_456_789, 1_700_000_000_000_000_999, 1_700_000_001_000_001_000]
)
def test_the_timestamp_is_what_datetime_isoformat_writes(monkeypatch, ns):
    fields = LineFields("web")
    fields.timestamp()  # caches another second first
    monkeypatch.setattr(fleet_logging.time, "time_ns", lambda: ns)

    second, microsecond = divmod(ns // 1000, 1_000_000)
    at = datetime.fromtimestamp(second, UTC).replace(microsecond=microsecond)
    expected = at.isoformat().replace("+00:00", "Z")  # what structlog's TimeStamper("iso", utc=True) writes
    assert fields.timestamp() == expected
