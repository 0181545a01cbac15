"""Running a step from an actor: bind the log context, inject the runtime, await on the loop.

Actors are thin synchronous functions that call :func:`run_step`; the step itself is a plain
``async def step(runtime, **ids)`` holding the business logic, so tests can call it directly.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import CurrentMessage

from messaging.queues import Route
from workers.runtime import Runtime

Step = Callable[..., Awaitable[Any]]

_runtime_provider: Callable[[], Awaitable[Runtime]] | None = None
#: How many times the current message was retried before this run (0 on first delivery).
_retries: contextvars.ContextVar[int] = contextvars.ContextVar("retries", default=0)


def current_retries() -> int:
    """Retries of the message the current step runs for (dramatiq's ``retries`` option)."""
    return _retries.get()


def set_runtime_provider(provider: Callable[[], Awaitable[Runtime]] | None) -> None:
    """Install the coroutine that returns this process's runtime (done by the worker bootstrap)."""
    global _runtime_provider
    _runtime_provider = provider


async def _run(
    step: Step, message_id: str | None, actor: str | None, retries: int, ids: dict[str, Any]
) -> Any:
    if _runtime_provider is None:
        raise RuntimeError("no runtime: workers.broker must be loaded before actors run")
    _retries.set(retries)
    runtime = await _runtime_provider()
    with structlog.contextvars.bound_contextvars(message_id=message_id, actor=actor, **ids):
        return await step(runtime, **ids)


def run_step(step: Step, **ids: Any) -> Any:
    """Run ``step`` for the current message on the worker's event loop and wait for it.

    The message id is read here, on the worker thread, because the event loop thread does
    not share the worker thread's context.
    """
    message = CurrentMessage.get_current_message()
    message_id = message.message_id if message else None
    actor = message.actor_name if message else None
    retries = message.options.get("retries", 0) if message else 0
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("the AsyncIO middleware is not installed on the broker")
    return loop_thread.run_coroutine(_run(step, message_id, actor, retries, ids))


#: Retry policy of every step: quick first retries, backoff capped far below RabbitMQ's
#: 30-minute consumer timeout (a delayed retry is held unacknowledged until it is due).
STEP_OPTIONS: dict[str, Any] = {"max_retries": 25, "min_backoff": 500, "max_backoff": 60_000}

#: Priority of follow-ups nobody is waiting on (emails, voiding a payment the order no longer
#: wants): any value above 0 puts a message among the follow-ups, which get a share of a worker's
#: threads while order steps wait (see :mod:`workers.work_queue`). Under a burst of expiries the
#: stock is released first, yet the emails keep going out.
FOLLOW_UP_PRIORITY = 100


def step_actor(route: Route, step: Step, **options: Any) -> dramatiq.Actor:
    """Declare the thin actor for ``step`` on ``route``'s queue; messages carry ids as kwargs."""

    def actor(**ids: Any) -> None:
        # The step's return value is for tests and callers of the step itself. Returned from an
        # actor without a results backend, dramatiq would log a warning for every message.
        run_step(step, **ids)

    actor.__name__ = actor.__qualname__ = route.actor_name
    actor.__doc__ = step.__doc__
    declare = dramatiq.actor(
        actor_name=route.actor_name, queue_name=route.queue_name, **{**STEP_OPTIONS, **options}
    )
    return declare(actor)
