"""Names of the fleet's steps and the queues they run on: the one place both sides agree on.

The gateway enqueues by name through the outbox without importing the actors; the actors are
declared with the same names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    actor_name: str
    queue_name: str


RESERVE = Route("reserve", "reserve")
PAY = Route("pay", "pay")
SETTLE = Route("settle", "settle")
# Expiry has a queue of its own so that retry backoffs of other steps never delay it.
EXPIRE = Route("expire", "expire")
CANCEL = Route("cancel", "cancel")
# Provider-side follow-ups of a cancellation: give up a pending payment, or refund a paid one.
VOID = Route("void", "void")
REFUND = Route("refund", "refund")
NOTIFY = Route("notify", "notify")
ARCHIVE = Route("archive", "archive")
RECONCILE = Route("reconcile", "reconcile")


#: The queue of every step route above, in declaration order (routes may share a queue).
_STEP_QUEUES = list(
    dict.fromkeys(value.queue_name for value in dict(globals()).values() if isinstance(value, Route))
)


def step_queues() -> list[str]:
    """The queue of every step route, in declaration order."""
    return list(_STEP_QUEUES)
