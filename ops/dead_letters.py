"""``orders-admin dead-letters``: look at and replay the messages dramatiq gave up on.

dramatiq declares every queue ``q`` with ``x-dead-letter-routing-key = q.XQ``: a message whose
retries ran out (or that could not be decoded) is rejected and RabbitMQ moves it to ``q.XQ``,
where it stays for dramatiq's dead-message TTL (7 days by default). Nothing consumes those queues.

Peeking uses plain AMQP (no management plugin needed): ``basic_get`` without auto-ack, then a
``basic_nack(requeue=True)`` of everything taken, which puts the messages back at their original
places. Replaying publishes the same message (same id, same arguments, retry bookkeeping cleared)
to its canonical queue with publisher confirms, and only then acks the dead-lettered copy: a crash
in between leaves a duplicate, never a loss (every step is idempotent).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pika
import pika.exceptions
from dramatiq import Message
from dramatiq.common import q_name, xq_name
from dramatiq.errors import DecodeError

from config import Settings
from messaging.queues import step_queues
from messaging.rabbitmq import fleet_broker, quiet_missing_queue_probes
from ops.common import OpsError, format_kwargs

DEFAULT_LIMIT = 50
#: Options the Retries middleware and delayed delivery keep; a replayed message starts afresh.
RETRY_OPTIONS = ("retries", "traceback", "requeue_timestamp", "eta")
#: Option counting how often a message was replayed from its dead-letter queue.
REPLAYS_OPTION = "dead_letter_replays"


def canonical(queue: str) -> str:
    """``reserve`` for ``reserve``, ``reserve.XQ`` or ``reserve.DQ``."""
    return q_name(queue)


@dataclass
class DeadLetter:
    """One dead-lettered message as found in a ``.XQ`` queue."""

    dead_letter_queue: str
    body_size: int
    message: Message | None = None
    decode_error: str | None = None
    death: dict[str, Any] = field(default_factory=dict)

    @property
    def message_id(self) -> str | None:
        return self.message.message_id if self.message else None

    @property
    def options(self) -> dict[str, Any]:
        return self.message.options if self.message else {}

    @property
    def retries(self) -> int | None:
        return self.options.get("retries")

    @property
    def traceback(self) -> str | None:
        return self.options.get("traceback")

    @property
    def error(self) -> str | None:
        """The exception line of the stored traceback (its last non-empty line)."""
        text = (self.traceback or "").strip()
        return text.splitlines()[-1].strip() if text else None

    @property
    def target_queue(self) -> str:
        """Where a replay sends it: the message's own canonical queue (else the dead-letter queue's)."""
        if self.message and self.message.queue_name:
            return canonical(self.message.queue_name)
        return canonical(self.dead_letter_queue)

    def describe(self) -> str:
        if self.message is None:
            return f"<undecodable message, {self.body_size} bytes: {self.decode_error}>"
        message = self.message
        return f"{message.message_id}  {message.actor_name}({format_kwargs(message.kwargs)})"

    def as_dict(self) -> dict[str, Any]:
        message = self.message
        return {
            "dead_letter_queue": self.dead_letter_queue,
            "message_id": self.message_id,
            "queue_name": message.queue_name if message else None,
            "actor_name": message.actor_name if message else None,
            "args": list(message.args) if message else None,
            "kwargs": message.kwargs if message else None,
            "enqueued_at": _millis(message.message_timestamp) if message else None,
            "retries": self.retries,
            "error": self.error,
            "traceback": self.traceback,
            "options": {k: v for k, v in self.options.items() if k != "traceback"},
            "dead_lettered": self.death or None,
            "body_size": self.body_size,
            "decode_error": self.decode_error,
        }


def _millis(value: Any) -> str | None:
    if not isinstance(value, (int, float)):
        return None
    return (
        datetime.fromtimestamp(value / 1000, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
        + "Z"
    )


def _text(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _death(properties: pika.BasicProperties) -> dict[str, Any]:
    """The newest ``x-death`` entry RabbitMQ added when it dead-lettered the message."""
    deaths = (properties.headers or {}).get("x-death") or []
    if not deaths:
        return {}
    latest = deaths[0]
    at = latest.get("time")
    if isinstance(at, datetime):
        at = at.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
    return {
        "reason": _text(latest.get("reason")),
        "queue": _text(latest.get("queue")),
        "at": at,
        "count": latest.get("count"),
    }


def parse(dead_letter_queue: str, properties: pika.BasicProperties, body: bytes) -> DeadLetter:
    """A :class:`DeadLetter` from what ``basic_get`` returned."""
    letter = DeadLetter(dead_letter_queue=dead_letter_queue, body_size=len(body), death=_death(properties))
    try:
        letter.message = Message.decode(body)
    except DecodeError as error:  # not a dramatiq message (JSON) at all
        cause = error.__cause__ or error
        letter.decode_error = f"{type(cause).__name__}: {cause}"
    return letter


@dataclass
class QueueListing:
    """What one dead-letter queue holds (``declared`` is False when it does not exist yet)."""

    queue: str
    declared: bool
    depth: int = 0
    letters: list[DeadLetter] = field(default_factory=list)

    @property
    def dead_letter_queue(self) -> str:
        return xq_name(self.queue)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "dead_letter_queue": self.dead_letter_queue,
            "declared": self.declared,
            "messages": self.depth,
            "shown": [letter.as_dict() for letter in self.letters],
        }


class DeadLetters:
    """Dead-letter operations on the vhost of BROKER_URL (blocking pika; one connection, to the
    first node that answers)."""

    def __init__(self, settings: Settings):
        # Replay may declare a queue: with the fleet's arguments (type, TTL), or RabbitMQ refuses it.
        self.broker = fleet_broker(settings, middleware=[])
        quiet_missing_queue_probes()
        self._targets: set[str] = set()  # queues known to exist (replay targets)
        parameters = self.broker.parameters
        self.vhost = (parameters[0] if isinstance(parameters, list) else parameters).virtual_host

    def connect(self) -> None:
        """Open the connection now, so an unreachable broker fails before any work."""
        self.broker.connection  # noqa: B018 (the property connects)

    def close(self) -> None:
        self.broker.close()

    def depth(self, queue: str) -> int | None:
        """Messages ready in ``queue``, or None when it does not exist."""
        channel = self.broker.connection.channel()
        try:
            return channel.queue_declare(queue, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                return None
            raise
        finally:
            if channel.is_open:
                channel.close()

    def resolve(self, queue: str | None) -> list[tuple[str, int | None]]:
        """(canonical queue, depth of its ``.XQ``) for ``queue`` or, without one, for every step queue.

        A queue named explicitly whose dead-letter queue does not exist is an error.
        """
        if queue is not None:
            name = canonical(queue)
            depth = self.depth(xq_name(name))
            if depth is None:
                raise OpsError(
                    f"no dead-letter queue {xq_name(name)} in vhost {self.vhost!r}"
                    f" (known step queues: {', '.join(step_queues())})"
                )
            return [(name, depth)]
        return [(name, self.depth(xq_name(name))) for name in step_queues()]

    def listing(self, queue: str | None, limit: int) -> list[QueueListing]:
        """Peek at up to ``limit`` messages per dead-letter queue, leaving them all in place."""
        listings = []
        for name, depth in self.resolve(queue):
            listing = QueueListing(queue=name, declared=depth is not None, depth=depth or 0)
            if depth:
                listing.letters = self._peek(xq_name(name), limit, depth)
            listings.append(listing)
        return listings

    def _peek(self, dead_letter_queue: str, limit: int, depth: int) -> list[DeadLetter]:
        channel = self.broker.connection.channel()
        letters: list[DeadLetter] = []
        try:
            while len(letters) < limit:
                method, properties, body = channel.basic_get(dead_letter_queue, auto_ack=False)
                if method is None:
                    break
                letters.append(parse(dead_letter_queue, properties, body))
        finally:
            _give_back(channel)
        self._wait_until_back(dead_letter_queue, depth)
        return letters

    def _wait_until_back(self, dead_letter_queue: str, depth: int) -> None:
        """Wait (briefly) until the letters handed back are ready again.

        A quorum queue takes a handed-back message back through its log, after the channel has
        closed: a replay (or a count) right after a listing would otherwise miss it.
        """
        deadline = time.monotonic() + GIVE_BACK_WAIT_SECONDS
        channel = self.broker.connection.channel()
        try:
            while time.monotonic() < deadline:
                ready = channel.queue_declare(dead_letter_queue, passive=True).method.message_count
                if ready >= depth:
                    return
                time.sleep(0.02)
        finally:
            if channel.is_open:
                channel.close()

    def replay(
        self,
        queue: str | None,
        *,
        message_ids: Iterable[str] | None = None,
        everything: bool = False,
        dry_run: bool = False,
        on_replay: Callable[[DeadLetter, str], None] | None = None,
    ) -> ReplayResult:
        """Move the chosen dead letters (``message_ids``, or ``everything``) back to their queues.

        Only the messages present when a queue is opened are considered, so messages dead-lettered
        meanwhile are left for the next run. With ``dry_run`` everything stays where it is.
        """
        wanted = set(message_ids or ())
        result = ReplayResult(dry_run=dry_run)
        for name, depth in self.resolve(queue):
            if not depth:
                continue
            if not everything and not wanted - result.found:
                break
            self._replay_queue(xq_name(name), depth, wanted, everything, result, on_replay)
        result.missing = sorted(wanted - result.found)
        return result

    def _replay_queue(
        self,
        dead_letter_queue: str,
        depth: int,
        wanted: set[str],
        everything: bool,
        result: ReplayResult,
        on_replay: Callable[[DeadLetter, str], None] | None,
    ) -> None:
        channel = self.broker.connection.channel()
        try:
            for _ in range(depth):
                method, properties, body = channel.basic_get(dead_letter_queue, auto_ack=False)
                if method is None:
                    break
                letter = parse(dead_letter_queue, properties, body)
                if not (everything or letter.message_id in wanted):
                    continue  # stays unacked until the end, then goes back in place
                if letter.message is None:
                    result.skipped.append(letter)
                    continue
                result.found.add(letter.message.message_id)
                target = letter.target_queue
                if not result.dry_run:
                    self._republish(letter.message, target)
                    channel.basic_ack(method.delivery_tag)
                result.replayed.append((letter, target))
                if on_replay is not None:
                    on_replay(letter, target)
                if not everything and not wanted - result.found:
                    break  # every id asked for is found: leave the rest of the queue alone
        finally:
            _give_back(channel)

    def _republish(self, message: Message, target: str) -> None:
        if target not in self._targets:
            if self.depth(target) is None:
                self.broker.declare_queue(target, ensure=True)  # as dramatiq declares it: with its .DQ/.XQ
            self._targets.add(target)
        options = {k: v for k, v in message.options.items() if k not in RETRY_OPTIONS}
        options[REPLAYS_OPTION] = int(message.options.get(REPLAYS_OPTION, 0)) + 1
        fresh = dataclasses.replace(message, queue_name=target, options=options)
        # The broker's channel confirms: this returns once RabbitMQ has the message on disk.
        self.broker.channel.basic_publish(
            exchange="",
            routing_key=target,
            body=fresh.encode(),
            properties=pika.BasicProperties(delivery_mode=2, priority=options.get("broker_priority")),
            mandatory=True,
        )


#: How long a listing waits for the letters it handed back to be ready again.
GIVE_BACK_WAIT_SECONDS = 5.0


def _give_back(channel: Any) -> None:
    """Requeue every message still unacknowledged on ``channel`` (in place) and close it.

    If the channel broke meanwhile RabbitMQ has requeued them already; the error that broke it
    is the one worth reporting, so a failure here is not raised over it.
    """
    if not channel.is_open:
        return
    try:
        channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
        channel.close()
    except pika.exceptions.AMQPError:
        pass


@dataclass
class ReplayResult:
    dry_run: bool
    replayed: list[tuple[DeadLetter, str]] = field(default_factory=list)
    skipped: list[DeadLetter] = field(default_factory=list)
    found: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)


def render_listing(listings: list[QueueListing], vhost: str, verbose: bool = False) -> str:
    """The human-readable ``dead-letters list``."""
    lines: list[str] = []
    empty, undeclared = [], []
    for listing in listings:
        if not listing.declared:
            undeclared.append(listing.dead_letter_queue)
            continue
        if not listing.depth:
            empty.append(listing.dead_letter_queue)
            continue
        shown = len(listing.letters)
        more = f" (showing {shown}; raise --limit for more)" if shown < listing.depth else ""
        lines.append(f"{listing.dead_letter_queue}: {listing.depth} message(s){more}")
        for letter in listing.letters:
            lines.append(f"  - {letter.describe()}")
            if letter.message is not None:
                message = letter.message
                info = [f"enqueued {_millis(message.message_timestamp)}", f"retries {letter.retries or 0}"]
                if message.queue_name and canonical(message.queue_name) != listing.queue:
                    info.append(f"queue {message.queue_name}")
                if message.options.get(REPLAYS_OPTION):
                    info.append(f"replayed {message.options[REPLAYS_OPTION]}x before")
                lines.append("      " + ", ".join(info))
            if letter.death:
                death = letter.death
                lines.append(
                    f"      dead-lettered: {death.get('reason')} from {death.get('queue')}"
                    f" at {death.get('at')}" + (f" ({death['count']}x)" if death.get("count") else "")
                )
            if letter.error:
                lines.append(f"      error: {letter.error}")
            if verbose and letter.traceback:
                lines.extend("        " + line for line in letter.traceback.rstrip().splitlines())
    total = sum(listing.depth for listing in listings)
    if not total:
        lines.append(f"no dead-lettered messages in vhost {vhost!r}")
    if empty:
        lines.append(f"empty: {', '.join(empty)}")
    if undeclared:
        lines.append(f"not declared yet: {', '.join(undeclared)}")
    return "\n".join(lines)
