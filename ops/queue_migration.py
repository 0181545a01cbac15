"""``orders-admin queues migrate --to quorum``: move the fleet's queues to the other queue type.

RabbitMQ cannot change a queue's type in place. For each fleet queue ``N`` of the vhost (every
step queue, its ``.XQ`` and its ``.DQ``):

1. its type: declaring ``N`` with the target type's arguments succeeds when ``N`` already is of
   that type (or creates it, empty, when it is missing); RabbitMQ refuses it, naming
   ``x-queue-type``, when ``N`` is of the other type;
2. of the other type, every message of ``N`` goes to the holding queue ``N.migrating`` (durable, of
   the target type): taken, published with the same body and properties under publisher
   confirms, then acknowledged. ``N``, once empty, is deleted and declared again as the fleet
   declares it with the target type;
3. every message of ``N.migrating`` comes back to ``N`` the same way, and the holding queue goes.

Messages keep their order, bodies (a delayed message's ``eta`` is in its body) and properties
(headers such as ``x-death``). A crash anywhere leaves every message in ``N`` or ``N.migrating``;
at worst in both (taken, confirmed in the other, not yet acknowledged): a duplicate, which every
step tolerates. Running the command again finishes the job: step 1 finds what ``N`` is by now,
step 3 empties any holding queue left. Only RabbitMQ's own bookkeeping is not carried over: a
letter's TTL in ``.XQ`` starts again in the new queue, and a quorum queue's ``x-delivery-count``
header is dropped.

Nothing may consume the queues meanwhile (stop the workers: the delayed messages they hold go back
to the ``.DQ`` queues), and nothing may publish to them with the old type (stop the gateways and
schedulers, or restart them with the new ``QUEUE_TYPE`` first: their publishes are then refused
and the outbox keeps the messages until the queues exist). See docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pika
import pika.exceptions
from dramatiq.common import dq_name, xq_name

from config import Settings
from messaging.queues import step_queues
from messaging.rabbitmq import (
    CLASSIC,
    PRECONDITION_FAILED,
    QUORUM,
    FleetBroker,
    fleet_broker,
    is_queue_type_mismatch,
    queue_type_arguments,
)
from ops.common import OpsError

#: Suffix of the queue that holds a queue's messages while it is declared again.
HOLDING_SUFFIX = ".migrating"
#: Headers RabbitMQ keeps for a queue's own bookkeeping, meaningless in another queue.
BOOKKEEPING_HEADERS = ("x-delivery-count",)
NOT_FOUND = 404


def fleet_queue_names() -> list[str]:
    """Every queue the fleet declares, dead-letter queues before the queues that feed them."""
    return [name for queue in step_queues() for name in (xq_name(queue), dq_name(queue), queue)]


def holding_queue(name: str) -> str:
    """Where ``name``'s messages wait while ``name`` is declared again."""
    return name + HOLDING_SUFFIX


@dataclass
class QueueMove:
    """What happened (or, on a dry run, would happen) to one queue."""

    queue: str
    was: str  # its type before: "classic" or "quorum"; "missing" when it was not declared yet
    messages: int = 0  # in it now (dry run); moved into the queue of the target type (run)
    held: int = 0  # dry run: left in its holding queue by an interrupted run, to be brought back

    def describe(self, target: str, dry_run: bool) -> str:
        """One line of the command's report."""
        held = holding_queue(self.queue)
        if dry_run:
            if self.was == "missing":
                line = f"{self.queue}: not declared yet (the fleet declares it {target})"
            elif self.was == target:
                line = f"{self.queue}: {target} already"
            else:
                line = f"{self.queue}: {self.was}, {self.messages} message(s): would move to {target}"
            return line + (f"; {self.held} message(s) to bring back from {held}" if self.held else "")
        if self.was == target:
            back = f", {self.messages} message(s) brought back from {held}" if self.messages else ""
            return f"{self.queue}: {target} already{back}"
        if self.was == "missing":
            return f"{self.queue}: declared {target}" + (
                f", {self.messages} message(s) brought back from {held}" if self.messages else ""
            )
        return f"{self.queue}: {self.was} -> {target}, {self.messages} message(s) moved"


class QueueMigration:
    """Moves the fleet queues of the vhost of ``settings.broker_url`` to queue type ``target``."""

    def __init__(self, settings: Settings, target: str):
        self.target = target
        self.source = CLASSIC if target == QUORUM else QUORUM
        # The arguments the fleet will declare every queue with once it runs with QUEUE_TYPE=target.
        self.broker: FleetBroker = fleet_broker(replace(settings, queue_type=target), middleware=[])
        parameters = self.broker.parameters
        self.vhost = (parameters[0] if isinstance(parameters, list) else parameters).virtual_host
        self._channel: pika.adapters.blocking_connection.BlockingChannel | None = None

    def close(self) -> None:
        self.broker.close()

    @property
    def channel(self):
        """A confirming channel; a fresh one after RabbitMQ closed the last (a refused declare)."""
        if self._channel is None or not self._channel.is_open:
            self._channel = self.broker.connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def _close_channel(self) -> None:
        if self._channel is not None and self._channel.is_open:
            self._channel.close()
        self._channel = None

    def _passive(self, name: str) -> tuple[int, int] | None:
        """(messages, consumers) of ``name``, or None when it does not exist."""
        try:
            ok = self.channel.queue_declare(name, passive=True).method
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == NOT_FOUND:
                return None
            raise
        return ok.message_count, ok.consumer_count

    def _is_target_type(self, name: str) -> bool:
        """Declare ``name`` as the fleet will (creating it when missing): True when it is (now) of
        the target type, False when it exists with the other type."""
        try:
            self.channel.queue_declare(name, durable=True, arguments=self.broker.queue_arguments(name))
        except pika.exceptions.ChannelClosedByBroker as error:
            if is_queue_type_mismatch(error):
                return False
            if error.reply_code == PRECONDITION_FAILED:
                raise OpsError(
                    f"{name} exists with other arguments than the fleet declares ({error.reply_text});"
                    " its type cannot be told apart: declare it as the fleet does first (for a"
                    " dead-letter queue, run with the DEAD_LETTER_TTL_SECONDS it was declared with)"
                ) from None
            raise
        return True

    def check_idle(self) -> None:
        """Refuse to start while anything consumes a fleet queue (a worker would lose its place)."""
        busy = []
        for name in fleet_queue_names():
            state = self._passive(name)
            if state is not None and state[1]:
                busy.append(f"{name} ({state[1]} consumer(s))")
        if busy:
            raise OpsError(f"stop the workers first: {', '.join(busy)} in vhost {self.vhost!r}")

    def plan(self) -> list[QueueMove]:
        """What :meth:`run` would do, changing nothing (missing queues stay missing)."""
        moves = []
        for name in fleet_queue_names():
            state, held = self._passive(name), self._passive(holding_queue(name))
            move = QueueMove(name, "missing", held=held[0] if held else 0)
            if state is not None:
                move.was = self.target if self._is_target_type(name) else self.source
                move.messages = state[0]
            moves.append(move)
        return moves

    def run(self, on_queue: Callable[[QueueMove], None] | None = None) -> list[QueueMove]:
        """Migrate every fleet queue (see the module); ``on_queue`` hears of each as it is done."""
        self.check_idle()
        moves = []
        for name in fleet_queue_names():
            move = self._migrate(name)
            moves.append(move)
            if on_queue is not None:
                on_queue(move)
        return moves

    def _migrate(self, name: str) -> QueueMove:
        hold = holding_queue(name)
        if self._passive(name) is None:
            move = QueueMove(name, "missing")
            self._is_target_type(name)  # declares it
        elif self._is_target_type(name):
            move = QueueMove(name, self.target)
        else:
            move = QueueMove(name, self.source)
            if self._passive(hold) is None:
                self.channel.queue_declare(hold, durable=True, arguments=queue_type_arguments(self.target))
            while True:
                self._move(name, hold)
                if self._delete_if_empty(name):
                    break
            if not self._is_target_type(name):  # declared again with the old type meanwhile
                raise OpsError(
                    f"{name} was declared {self.source} again while it was moved: stop its publishers"
                    " (or restart them with the new QUEUE_TYPE) and run the command again"
                )
            # A RabbitMQ 3.10 channel keeps what it learnt of a queue by name: publishing to the
            # new queue on the channel that used the old one crashes the channel (INTERNAL_ERROR,
            # the connection closes). Hence a fresh channel for the queue's new life.
            self._close_channel()
        if self._passive(hold) is not None:
            while True:
                move.messages += self._move(hold, name)
                if self._delete_if_empty(hold):
                    break
        return move

    def _move(self, source: str, target: str) -> int:
        """Move every message of ``source`` to the end of ``target``; each is acknowledged only
        once RabbitMQ confirmed its copy."""
        channel, moved = self.channel, 0
        while True:
            method, properties, body = channel.basic_get(source, auto_ack=False)
            if method is None:
                return moved
            if properties.headers:
                for header in BOOKKEEPING_HEADERS:
                    properties.headers.pop(header, None)
            channel.basic_publish("", target, body, properties, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1

    def _delete_if_empty(self, name: str) -> bool:
        """Delete ``name`` if nothing is in it (False when something arrived meanwhile).

        Quorum queues refuse ``queue.delete`` with ``if-empty`` (and close the connection), so
        the count is checked first; nothing else publishes to these queues during a migration.
        """
        state = self._passive(name)
        if state is None:
            return True
        if state[0]:
            return False
        self.channel.queue_delete(name)
        return True
