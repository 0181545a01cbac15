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


def step_queues() -> list[str]:
    """The canonical queue of every step route in this module, in declaration order."""
    names: list[str] = []
    for value in _ROUTES:
        if isinstance(value, Route) and value.queue_name not in names:
            names.append(value.queue_name)
    return names


#: Every route declared above, taken once the module is loaded.
_ROUTES = [value for value in globals().values() if isinstance(value, Route)]
