"""The fleet's steps, one module each; importing this package declares every actor.

Load :mod:`workers.broker` first (``dramatiq workers.broker actors``) so the actors bind to
the fleet's broker.
"""

from actors.pay import pay
from actors.reserve import reserve
from actors.settle import settle

__all__ = ["pay", "reserve", "settle"]
