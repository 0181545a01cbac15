"""Unit of work: one database transaction plus the messages it causes, published after commit.

Messages are written to the outbox table inside the transaction (so they commit or vanish with
it) and handed to a publisher only once the commit succeeded: a crash between the two leaves an
unsent row for the relay, never a lost or premature message.

What a transaction announces (the customer's email, the domain event, the live-status nudge)
is said explicitly, by the move itself: a transition made with SQL statements
(:mod:`models.order_moves`) calls :meth:`UnitOfWork.announce`, and one made on an ORM order
goes through :meth:`UnitOfWork.move`, which does the same. Nothing is inferred from what the
session happens to hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from models.clock import utcnow
from models.order_record import OrderRecord, lock_order_record
from models.state import OrderStatus, Reason, transition
from models.tables import Order, OutboxMessage, new_id, table_of

log = structlog.get_logger(__name__)

_OUTBOX = table_of(OutboxMessage)
_INSERT_OUTBOX = insert(_OUTBOX)


@dataclass(slots=True)
class OutboxRow:
    """One outbox row as this transaction writes it and the publisher sends it.

    Either a step for the workers (``queue_name``/``actor_name``) or a domain event
    (``exchange``/``routing_key``); ``kwargs`` is the step's arguments or the event body.
    """

    kwargs: dict[str, Any]
    queue_name: str | None = None
    actor_name: str | None = None
    exchange: str | None = None
    routing_key: str | None = None
    delay_ms: int | None = None
    order_id: str | None = None
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)

    def values(self) -> dict[str, Any]:
        """The row's column values for the INSERT."""
        return {
            "id": self.id,
            "queue_name": self.queue_name,
            "actor_name": self.actor_name,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "kwargs": self.kwargs,
            "delay_ms": self.delay_ms,
            "order_id": self.order_id,
            "created_at": self.created_at,
            "sent_at": None,
            "attempts": 0,
        }


class Publisher(Protocol):
    async def publish(self, messages: Sequence[Any]) -> None: ...


class Notifier(Protocol):
    async def publish(self, changes: Iterable[tuple[str, str]]) -> None: ...


class Emitter(Protocol):
    def emit(self, uow: UnitOfWork, announced: list[Announcement]) -> None: ...

    def event_for(self, status: str) -> str | None: ...


@dataclass(frozen=True)
class Announcement:
    """One event of an order for the emitter: its type and, for a repeatable one, which occurrence."""

    order: Any
    event_type: str
    occurrence: str | None = None


class UnitOfWork:
    """``async with UnitOfWork(...) as uow:`` opens a transaction; ``await uow.commit()`` ends it.

    Leaving the block without committing rolls everything back, outbox rows included.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        notifier: Notifier | None = None,
        emitter: Emitter | None = None,
    ):
        self._sessionmaker = sessionmaker
        self._publisher = publisher
        self._notifier = notifier
        self._emitter = emitter
        self._pending: list[OutboxRow] = []
        # Explicit announcements: (order, event type) for the emitter, (order id, status) for the nudge.
        self._announced: list[Announcement] = []
        self._moved: dict[str, str] = {}
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessionmaker()
        await self.session.begin()
        self._pending = []
        self._announced = []
        self._moved = {}
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    async def connection(self) -> AsyncConnection:
        """This transaction's connection, for SQL statements that bypass the ORM."""
        return await self.session.connection()

    async def lock_order(self, order_id: str) -> OrderRecord | None:
        """The whole order with its row locked until this transaction ends (None: no such order)."""
        return await lock_order_record(await self.connection(), order_id)

    def enqueue(
        self, route: Any, *, delay_ms: int | None = None, order_id: str | None = None, **kwargs: Any
    ) -> OutboxRow:
        """Record a message for ``route`` (a :class:`messaging.queues.Route`) in this transaction."""
        if order_id is not None:
            kwargs.setdefault("order_id", order_id)
        message = OutboxRow(
            kwargs=kwargs,
            queue_name=route.queue_name,
            actor_name=route.actor_name,
            delay_ms=delay_ms,
            order_id=kwargs.get("order_id"),
        )
        self._pending.append(message)
        return message

    def publish_event(
        self, exchange: str, routing_key: str, body: dict[str, Any], order_id: str | None = None
    ) -> OutboxRow:
        """Record a domain event for ``exchange`` in this transaction."""
        message = OutboxRow(kwargs=body, exchange=exchange, routing_key=routing_key, order_id=order_id)
        self._pending.append(message)
        return message

    def announce(self, order: Any, status: str) -> None:
        """Record that ``order`` (an :class:`models.order_record.OrderRecord`, or an ORM order moved by
        :meth:`move`) moved to ``status``.

        At commit its subscribers hear of it: the email and domain event of the status, and after
        commit the live-status nudge.
        """
        self._moved[order.id] = status
        if self._emitter is None:
            return
        event_type = self._emitter.event_for(status)
        if event_type is not None:
            self._announced.append(Announcement(order, event_type))

    def announce_event(self, order: Any, event_type: str, occurrence: str) -> None:
        """Record an event of ``order`` that is not a status move (``order.refunded``,
        ``order.updated``, a return's events); at commit it gets its email and domain event.

        An order may have such an event several times: ``occurrence`` (the refund's id, say) tells
        them apart, so each gets its own email, and a redelivered one no second.
        """
        if self._emitter is not None:
            self._announced.append(Announcement(order, event_type, occurrence))

    def move(
        self, order: Order, target: OrderStatus, reason: Reason | None = None, note: str | None = None
    ) -> None:
        """Move ``order``, an ORM order loaded (and locked) in this session, to ``target`` and
        announce it as :meth:`announce` does.

        Raises :class:`models.state.IllegalTransition` when the move is not in the table.
        """
        transition(order, target, reason, note)
        self.announce(order, order.status)

    async def commit(self) -> None:
        """Announce status changes, write the outbox, commit, then publish what was enqueued.

        Publishing failures are left to the relay; the commit is what counts.
        """
        if self._emitter is not None and self._announced:
            self._emitter.emit(self, self._announced)
        changes = self._moved
        if self._pending:
            connection = await self.connection()
            await connection.execute(_INSERT_OUTBOX, [message.values() for message in self._pending])
        await self.session.commit()
        if changes and self._notifier is not None:
            await self._notifier.publish(changes.items())
        pending, self._pending = self._pending, []
        if pending:
            try:
                await self._publisher.publish(pending)
            except Exception:
                log.warning(
                    "outbox.publish_deferred",
                    count=len(pending),
                    order_ids=sorted({m.order_id for m in pending if m.order_id}),
                    exc_info=True,
                )


class UnitOfWorkFactory:
    """Makes units of work that share one process's database, publisher, notifier and emitter."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        notifier: Notifier | None = None,
        emitter: Emitter | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.publisher = publisher
        self.notifier = notifier
        self.emitter = emitter

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessionmaker, self.publisher, self.notifier, self.emitter)
