"""Structured logging for every process: JSON lines in production, readable lines in development.

structlog's own loggers render their lines themselves (orjson, no trip through the ``logging``
module) and hand each finished line to :class:`LineHandler`, which writes it with one call.
Standard-library loggers (dramatiq, aiohttp, pika, alembic) reach the same handler through
``logging`` and come out as the same lines. Context bound with ``structlog.contextvars``
(``order_id``, ``message_id``) lands on every line, whichever way it came.

Every line has ``event``, ``level``, ``logger``, ``timestamp`` (ISO 8601, UTC), ``process``, the
bound context and the call's own keys, and ``exception`` (the traceback) when there was one.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from types import FrameType
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor

from config.settings import Settings

#: Options of every ``orjson.dumps`` of a line: keys that are not strings (``{2: ...}``) become
#: strings, as the standard library's encoder does.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS

#: The handler that lines go to; set by :func:`configure_logging`.
_handler: LineHandler | None = None


def configure_logging(settings: Settings, process: str) -> None:
    """Route all logging to one handler on stderr, tagging every line with ``process``."""
    global _handler
    shared: list[Processor] = [merge_contextvars, LineFields(process)]
    direct_renderer: Processor
    foreign_renderer: Processor
    if settings.log_format == "json":
        direct_renderer, foreign_renderer = _render_json_bytes, _render_json_text
    else:
        direct_renderer = foreign_renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    handler = LineHandler(sys.stderr)
    handler.setFormatter(LineFormatter(shared, foreign_renderer))
    structlog.configure(
        processors=[*shared, direct_renderer],
        logger_factory=_line_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.log_level)),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    _handler = handler
    # Access logs, pika's connection chatter and the Stripe SDK's two lines per request would
    # drown the order trail (the steps log each provider call with the order's ids themselves).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("stripe").setLevel(logging.WARNING)


_STRUCTLOG_CONTEXT_VARS: dict[str, contextvars.ContextVar[Any]] | None = getattr(
    structlog.contextvars, "_CONTEXT_VARS", None
)
_STRUCTLOG_KEY_PREFIX_LEN = len(getattr(structlog.contextvars, "STRUCTLOG_KEY_PREFIX", "structlog_"))


def merge_contextvars(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """``structlog.contextvars.merge_contextvars``, reading only the variables structlog made.

    structlog's own walks every variable of the context (asyncio's, aiohttp's, ...) on every line;
    this reads structlog's registry of the variables ``bind_contextvars`` created instead. The
    result is the same: bound values that are set, without overriding the call's own keys.
    """
    # A snapshot: another thread may bind a key never bound before while this one iterates.
    for name, var in tuple(_STRUCTLOG_CONTEXT_VARS.items()):  # type: ignore[union-attr]  # not None here
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(name[_STRUCTLOG_KEY_PREFIX_LEN:], value)
    return event_dict


if _STRUCTLOG_CONTEXT_VARS is None:  # a structlog without that registry
    merge_contextvars = structlog.contextvars.merge_contextvars


#: The ``level`` of lines logged with structlog's aliases, as structlog's ``add_log_level`` names them.
_LEVEL_NAMES = {"warn": "warning", "exception": "error"}


class LineFields:
    """Adds ``level``, ``logger``, ``timestamp`` and ``process`` to a line, and ``exception``.

    One processor doing what ``add_log_level``, ``stdlib.add_logger_name``,
    ``TimeStamper(fmt="iso", utc=True)``, the process tag and ``format_exc_info`` did one by one,
    with the same values: the timestamp as ``datetime.isoformat`` writes it (microseconds left out
    when zero), ``Z`` for UTC, its date and time formatted once per second.
    """

    def __init__(self, process: str) -> None:
        self.process = process
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
        record = event_dict.get("_record")
        event_dict["logger"] = logger.name if record is None else record.name
        event_dict["timestamp"] = self.timestamp()
        event_dict.setdefault("process", self.process)
        if "exc_info" in event_dict:
            return structlog.processors.format_exc_info(logger, method_name, event_dict)
        return event_dict

    def timestamp(self) -> str:
        """Now, in UTC, as ``2024-05-01T12:00:00.123456Z``."""
        second, microsecond = divmod(time.time_ns() // 1000, 1_000_000)
        cached = self._second  # one read and one write of the pair: threads share this object
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached
        return f"{cached[1]}.{microsecond:06d}Z" if microsecond else f"{cached[1]}Z"


class LineHandler(logging.StreamHandler):
    """Writes finished lines to a stream, each with a single write, one thread at a time.

    Records of standard-library loggers come through :meth:`emit`; lines rendered by structlog's
    loggers through :meth:`write_line`, which skips the ``logging`` machinery. Both take the
    handler's lock, so lines of worker threads never tear each other.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: bytes | str, name: str, levelno: int) -> None:
        """Write a line that structlog rendered (``name`` and ``levelno`` only tell errors apart)."""
        try:
            with self.lock:  # type: ignore[union-attr]  # Handler.__init__ created it
                self._write(line)
        except RecursionError:
            raise
        except Exception:
            self.handleError(logging.makeLogRecord({"name": name, "levelno": levelno, "msg": line}))

    def _write(self, line: bytes | str) -> None:
        stream = self.stream
        if isinstance(line, bytes):
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                # The text layer is flushed after every line, so nothing of it is pending here.
                buffer.write(line + b"\n")
                buffer.flush()
                return
            line = line.decode("utf-8")
        # One write of the whole line: dramatiq's worker processes send each write as one message.
        stream.write(line + "\n")
        stream.flush()


class LineFormatter(logging.Formatter):
    """Renders a standard-library record as structlog renders its own events.

    The event is the record's message; ``processors`` (the same as structlog's own) add the
    context, level, logger name, timestamp, process and exception, and ``renderer`` makes the line:
    what structlog's ``ProcessorFormatter`` did with a ``foreign_pre_chain``, without its copy of
    every record. Lines structlog already rendered (sent through ``logging`` while another handler
    stands in, see :class:`_LineLogger`) pass as they are.
    """

    def __init__(self, processors: list[Any], renderer: Any) -> None:
        super().__init__()
        self.processors = processors
        self.renderer = renderer

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "structlog_line", False):
            return record.msg
        event_dict: dict[str, Any] = {"event": record.getMessage(), "_record": record}
        if record.exc_info:
            event_dict["exc_info"] = record.exc_info
        if record.stack_info:
            event_dict["stack_info"] = record.stack_info
        method_name = record.levelname.lower()
        for processor in self.processors:
            event_dict = processor(None, method_name, event_dict)
        del event_dict["_record"]
        return self.renderer(None, method_name, event_dict)


class _LineLogger:
    """The logger that structlog's bound loggers wrap: it passes each rendered line on.

    Lines go to the handler :func:`configure_logging` installed. While that handler is not on the
    root logger (``tqdm``'s ``logging_redirect_tqdm`` swaps it for its own for a while, a test put
    the previous handlers back), they go through ``logging`` to whichever handlers are there.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _write(self, line: bytes | str, levelno: int) -> None:
        handler = _handler
        if handler is not None and handler in logging.root.handlers:
            handler.write_line(line, self.name, levelno)
            return
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        record = logging.makeLogRecord(
            {
                "name": self.name,
                "levelno": levelno,
                "levelname": logging.getLevelName(levelno),
                "msg": line,
                "structlog_line": True,
            }
        )
        logging.getLogger(self.name).handle(record)

    def debug(self, line: bytes | str) -> None:
        self._write(line, logging.DEBUG)

    def info(self, line: bytes | str) -> None:
        self._write(line, logging.INFO)

    def warning(self, line: bytes | str) -> None:
        self._write(line, logging.WARNING)

    def error(self, line: bytes | str) -> None:
        self._write(line, logging.ERROR)

    def critical(self, line: bytes | str) -> None:
        self._write(line, logging.CRITICAL)

    warn = warning
    exception = error
    fatal = critical
    msg = log = info


def _line_logger(*args: Any) -> _LineLogger:
    """structlog's logger factory: ``get_logger(name)``, or without a name the calling module's."""
    if args:
        return _LineLogger(args[0])
    return _LineLogger(_calling_module())


def _calling_module() -> str:
    """The module of the first frame outside structlog and this module: the name structlog's
    ``stdlib.LoggerFactory`` gives a logger obtained without one."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__") or "?"
        if not name.startswith(("structlog", __name__)):
            return name
        frame = frame.f_back
    return "?"


def _dumps(obj: Any, default: Any) -> bytes:
    """``orjson.dumps``, or the standard library's encoder for what orjson refuses (ints past
    64 bits); the last resort writes the unrenderable values as their ``repr``."""
    try:
        return orjson.dumps(obj, default=default, option=_ORJSON_OPTIONS)
    except TypeError:
        pass
    try:
        return json.dumps(obj, default=default).encode("utf-8")
    except (TypeError, ValueError):
        return json.dumps(
            {str(key): value if isinstance(value, str) else repr(value) for key, value in obj.items()}
        ).encode("utf-8")


_render_json_bytes = structlog.processors.JSONRenderer(serializer=_dumps)


def _render_json_text(logger: Any, method_name: str, event_dict: Any) -> str:
    """The JSON line as text, which ``logging.Formatter`` needs."""
    line = _render_json_bytes(logger, method_name, event_dict)
    return line.decode("utf-8") if isinstance(line, bytes) else line
