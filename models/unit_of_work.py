"""Unit of work: one database transaction plus the messages it causes, published after commit.

Messages are written to the outbox table inside the transaction (so they commit or vanish with
it) and handed to a publisher only once the commit succeeded: a crash between the two leaves an
unsent row for the relay, never a lost or premature message.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence

import structlog
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Order, OutboxMessage, Payment

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    async def publish(self, messages: Sequence[OutboxMessage]) -> None: ...


class Notifier(Protocol):
    async def publish(self, changes: Iterable[tuple[str, str]]) -> None: ...


class Emitter(Protocol):
    def emit(self, uow: "UnitOfWork", orders: list[Order], refunded: list[Payment]) -> None: ...


class UnitOfWork:
    """``async with UnitOfWork(...) as uow:`` opens a transaction; ``await uow.commit()`` ends it.

    Leaving the block without committing rolls everything back, outbox rows included.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher,
                 notifier: Notifier | None = None, emitter: Emitter | None = None):
        self._sessionmaker = sessionmaker
        self._publisher = publisher
        self._notifier = notifier
        self._emitter = emitter
        self._pending: list[OutboxMessage] = []
        self.session: AsyncSession

    async def __aenter__(self) -> "UnitOfWork":
        self.session = self._sessionmaker()
        await self.session.begin()
        self._pending = []
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            await self.session.close()

    def enqueue(self, route: Any, *, delay_ms: int | None = None, order_id: str | None = None,
                **kwargs: Any) -> OutboxMessage:
        """Record a message for ``route`` (a :class:`workers.queues.Route`) in this transaction."""
        if order_id is not None:
            kwargs.setdefault("order_id", order_id)
        message = OutboxMessage(
            queue_name=route.queue_name,
            actor_name=route.actor_name,
            kwargs=kwargs,
            delay_ms=delay_ms,
            order_id=kwargs.get("order_id"),
        )
        self.session.add(message)
        self._pending.append(message)
        return message

    def _changed(self, kind: type) -> list[Any]:
        """Instances of ``kind`` whose status this transaction changed (before commit clears that)."""
        instances = {id(i): i for i in [*self.session.new, *self.session.identity_map.values()]}
        return [instance for instance in instances.values()
                if isinstance(instance, kind) and inspect(instance).attrs._status.history.has_changes()]

    def publish_event(self, exchange: str, routing_key: str, body: dict[str, Any],
                      order_id: str | None = None) -> OutboxMessage:
        """Record a domain event for ``exchange`` in this transaction."""
        message = OutboxMessage(exchange=exchange, routing_key=routing_key, kwargs=body, order_id=order_id)
        self.session.add(message)
        self._pending.append(message)
        return message

    async def commit(self) -> None:
        """Announce status changes, commit, then publish what the transaction enqueued.

        Publishing failures are left to the relay; the commit is what counts.
        """
        orders = self._changed(Order)
        if self._emitter is not None:
            payments = self._changed(Payment)
            if orders or payments:
                self._emitter.emit(self, orders, payments)
        changes = [(order.id, order.status) for order in orders]
        await self.session.commit()
        if changes and self._notifier is not None:
            await self._notifier.publish(changes)
        pending, self._pending = self._pending, []
        if pending:
            try:
                await self._publisher.publish(pending)
            except Exception:
                log.warning("outbox.publish_deferred", count=len(pending),
                            order_ids=sorted({m.order_id for m in pending if m.order_id}), exc_info=True)

    async def rollback(self) -> None:
        """Discard everything done in this transaction."""
        self._pending = []
        await self.session.rollback()


class UnitOfWorkFactory:
    """Makes units of work that share one process's database, publisher, notifier and emitter."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], publisher: Publisher,
                 notifier: Notifier | None = None, emitter: Emitter | None = None):
        self.sessionmaker = sessionmaker
        self.publisher = publisher
        self.notifier = notifier
        self.emitter = emitter

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessionmaker, self.publisher, self.notifier, self.emitter)
