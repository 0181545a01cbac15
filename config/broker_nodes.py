"""``BROKER_URL`` as a list of RabbitMQ nodes: the nodes of one cluster, separated by ``;``.

dramatiq reads the value the same way (it hands pika one set of parameters per node, and pika
connects to the first node that answers, in order). Everything else that opens its own AMQP
connection (readiness, metrics, the operator tool) splits the value with :func:`broker_nodes`.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

#: RabbitMQ's ports when a node's URL names none.
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}


_EXPECTED = "expected a URL starting with amqp://, amqps:// and naming a host"


class BrokerUrlError(ValueError):
    """A ``BROKER_URL`` that does not list usable nodes of one vhost; the text says why."""


def broker_nodes(broker_url: str) -> list[str]:
    """The URL of each node listed in ``broker_url``, in order (spaces around ``;`` dropped)."""
    return [part.strip() for part in broker_url.split(";") if part.strip()]


def node_label(url: str) -> str:
    """``host:port`` of one node's URL (never its credentials), for logs and readiness."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or DEFAULT_PORTS.get(parts.scheme, 5672)}"


def vhost(url: str) -> str:
    """The virtual host a node's URL names, as pika reads it (no path or ``/`` is ``/``)."""
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def parse_broker_url(raw: str) -> str:
    """``raw`` checked and normalised: ``url[;url...]`` with every part an ``amqp://`` or
    ``amqps://`` URL naming a host, all of one vhost (a cluster serves one vhost on every node, and
    a process must find the same queues whichever node it reaches).

    Raises :class:`BrokerUrlError` saying what is wrong.
    """
    nodes = broker_nodes(raw)
    if not nodes:
        raise BrokerUrlError(f"{_EXPECTED}, got {raw!r}")
    for node in nodes:
        parts = urlsplit(node)
        try:
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            raise BrokerUrlError(f"node {node!r} has a port that is not a number") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            # The words of every URL setting; with several nodes it names the one that is wrong.
            raise BrokerUrlError(f"{_EXPECTED}, got {node!r}")
    vhosts = {vhost(node) for node in nodes}
    if len(vhosts) > 1:
        listed = ", ".join(sorted(repr(v) for v in vhosts))
        raise BrokerUrlError(f"the nodes name different vhosts ({listed}); every node must name the same one")
    return ";".join(nodes)
