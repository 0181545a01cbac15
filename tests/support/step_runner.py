"""Delivering an order's outbox messages to the real steps, as a worker would, one at a time.

The test decides when each kind of message is delivered (and can deliver any of them again), so
an interleaving is written down step by step instead of left to the broker's timing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from actors.cancel import cancel_order
from actors.expire import expire_hold
from actors.pay import request_payment
from actors.refund import refund_payment
from actors.reserve import reserve_stock
from actors.settle import settle_payment
from actors.void import void_payment
from models.tables import OutboxMessage
from tests.support.polling import eventually

STEPS: dict[str, Callable[..., Awaitable[Any]]] = {
    "reserve": reserve_stock,
    "pay": request_payment,
    "settle": settle_payment,
    "expire": expire_hold,
    "cancel": cancel_order,
    "void": void_payment,
    "refund": refund_payment,
}


class StepRunner:
    """Runs the step messages one order's transactions enqueued, each once unless asked again."""

    def __init__(self, runtime, order_id: str):
        self.runtime, self.order_id = runtime, order_id
        self.delivered: set[str] = set()

    def through(self, runtime) -> StepRunner:
        """A runner delivering this order's messages to steps given ``runtime`` instead (a provider
        client that interleaves something, say), sharing what was delivered already."""
        runner = StepRunner(runtime, self.order_id)
        runner.delivered = self.delivered
        return runner

    async def messages(self, *actors: str) -> list[OutboxMessage]:
        """The order's step messages for ``actors``, oldest first."""
        async with self.runtime.sessionmaker() as session:
            return list(
                (
                    await session.scalars(
                        select(OutboxMessage)
                        .where(OutboxMessage.order_id == self.order_id, OutboxMessage.actor_name.in_(actors))
                        .order_by(OutboxMessage.created_at, OutboxMessage.id)
                    )
                ).all()
            )

    async def run(self, *actors: str, **match: Any) -> list[tuple[str, Any]]:
        """Deliver every message for ``actors`` not delivered yet whose arguments include ``match``;
        returns (actor, step result) per message, in order."""
        results = []
        for message in await self.messages(*actors):
            if message.id in self.delivered or not _matches(message, match):
                continue
            self.delivered.add(message.id)
            results.append((message.actor_name, await self._deliver(message)))
        return results

    async def again(self, *actors: str) -> list[tuple[str, Any]]:
        """Deliver every message for ``actors`` delivered so far once more (a redelivery)."""
        return [
            (message.actor_name, await self._deliver(message))
            for message in await self.messages(*actors)
            if message.id in self.delivered
        ]

    async def arrived(self, actor: str, timeout: float = 20.0, **match: Any) -> OutboxMessage:
        """Wait until a message for ``actor`` with arguments ``match`` is enqueued (a webhook's
        `settle`, say); returns it."""

        async def probe() -> OutboxMessage | None:
            found = [m for m in await self.messages(actor) if _matches(m, match)]
            return found[0] if found else None

        return await eventually(probe, timeout=timeout, what=f"a {actor} message with {match}")

    async def _deliver(self, message: OutboxMessage) -> Any:
        return await STEPS[message.actor_name](self.runtime, **message.kwargs)


def _matches(message: OutboxMessage, match: dict[str, Any]) -> bool:
    return all(message.kwargs.get(name) == value for name, value in match.items())
