"""The fleet's steps, one module each; importing this package declares every actor.

Load :mod:`workers.broker` first (``dramatiq workers.broker actors``) so the actors bind to
the fleet's broker.
"""

from actors.archive import archive
from actors.cancel import cancel
from actors.expire import expire
from actors.notify import notify
from actors.pay import pay
from actors.reconcile import reconcile_actor
from actors.refund import refund
from actors.reserve import reserve
from actors.settle import settle
from actors.void import void

__all__ = [
    "archive",
    "cancel",
    "expire",
    "notify",
    "pay",
    "reconcile_actor",
    "refund",
    "reserve",
    "settle",
    "void",
]
