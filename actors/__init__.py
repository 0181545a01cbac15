"""The fleet's steps, one module each; importing this package declares every actor.

Load :mod:`workers.broker` first (``dramatiq workers.broker actors``) so the actors bind to
the fleet's broker.
"""

from actors.cancel import cancel
from actors.expire import expire
from actors.pay import pay
from actors.refund import refund
from actors.reserve import reserve
from actors.settle import settle
from actors.void import void

__all__ = ["cancel", "expire", "pay", "refund", "reserve", "settle", "void"]
