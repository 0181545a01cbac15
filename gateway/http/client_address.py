"""The address of the client behind a request, for limits and logs.

It is the TCP peer (``request.remote``), unless that peer is one of ``TRUSTED_PROXIES``: then the
client is the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy. Each proxy
appends the address it was connected from, so the entries a trusted proxy wrote are believed and
anything to their left, which the client may have sent itself, is not.

- Several ``X-Forwarded-For`` headers count as one list, in the order they came (RFC 9110 5.3).
- Empty list elements are skipped (RFC 9110 5.6.1); every other entry must be a bare IPv4 or IPv6
  address. The walk stops at the first one that is not (``unknown``, a port, a hostname): the
  answer is then the last address that was believed, i.e. the proxy that passed the malformed
  entry on, or the peer. A proxy writing such entries thus puts its clients in one budget; it
  never lets a client choose its address.
- When every entry is a trusted proxy, the left-most one is the client (say, an internal host).
- IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``, what a dual-stack socket reports) are taken
  as the IPv4 address, and every address is returned in its canonical spelling, so one client
  always has one counter.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import hdrs, web

from gateway.keys import SETTINGS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What a request without a peer address (a Unix socket) counts as.
UNKNOWN = "unknown"


@functools.lru_cache(maxsize=8)
def trusted_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES`` (CIDR strings, validated by the settings) as networks, parsed once per value."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address: ``peer``, or what the trusted proxies in front of it say it is.

    ``forwarded_for`` holds the values of every ``X-Forwarded-For`` header, in order; ``trusted``
    the networks of the trusted proxies. See the module's docstring for the rules.
    """
    believed = _parse(peer)
    if believed is None:
        return peer or UNKNOWN
    entries = [entry.strip() for value in forwarded_for for entry in value.split(",")]
    for entry in reversed([entry for entry in entries if entry]):
        if not _is_trusted(believed, trusted):
            break
        hop = _parse(entry)
        if hop is None:
            break
        believed = hop
    return str(believed)


def request_client_address(request: web.Request) -> str:
    """:func:`client_address` of ``request``, with the app's ``TRUSTED_PROXIES``."""
    trusted = trusted_networks(request.app[SETTINGS].trusted_proxies)
    if not trusted:  # the usual case: no header is looked at
        return client_address(request.remote, (), ())
    return client_address(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, ()), trusted)


def _parse(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, trusted: Sequence[Network]) -> bool:
    # An IPv4 address is never inside an IPv6 network, nor the reverse: ``in`` just says False.
    return any(address in network for network in trusted)
