"""Connecting to the nodes of a RabbitMQ cluster: the node that answered last is tried first.

dramatiq gives pika one set of connection parameters per node of ``BROKER_URL`` and pika tries them
in order, so a process whose first node is lost keeps trying that node first on every new
connection: at once refused when the node's process died, but a whole connect timeout (pika's
``socket_timeout``, 10 s) when its host is gone, and each time pika logs the failed attempt as an
error. Here the node list starts from the node the process last connected to, so after one failover
its channels and consumers go straight to a node that answers (each new connection pays for the
lost node once at most: the first one that reaches another node moves the preference there).
"""

from __future__ import annotations

from typing import Any

from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer


class NodePreferringBroker(RabbitmqBroker):
    """dramatiq's RabbitMQ broker, trying the node that answered last first (see the module)."""

    _nodes: list[Any]
    _preferred = 0

    @property
    def parameters(self) -> Any:
        """pika's parameters of every node, starting with the one that answered last (a single
        node's parameters on their own, as dramatiq keeps them)."""
        if len(self._nodes) == 1:
            return self._nodes[0]
        return self._nodes[self._preferred :] + self._nodes[: self._preferred]

    @parameters.setter
    def parameters(self, value: Any) -> None:
        # dramatiq's __init__ assigns either one node's parameters or a list of them.
        self._nodes = list(value) if isinstance(value, list) else [value]
        self._preferred = 0

    def remember_node(self, connection: Any) -> None:
        """Note the node ``connection`` (a pika BlockingConnection) reached, to try it first next."""
        # pika keeps the parameters the connection was made with on its inner connection only;
        # read defensively, so a pika that moves them just loses the preference.
        reached = getattr(getattr(connection, "_impl", None), "params", None)
        if reached is not None and reached in self._nodes:
            self._preferred = self._nodes.index(reached)

    @property
    def connection(self) -> Any:
        """This thread's connection (see dramatiq's), opened on the preferred node first."""
        fresh = getattr(self.state, "connection", None) is None
        connection = RabbitmqBroker.connection.fget(self)  # type: ignore[attr-defined]
        if fresh:
            self.remember_node(connection)
        return connection

    @connection.deleter
    def connection(self) -> None:
        RabbitmqBroker.connection.fdel(self)  # type: ignore[attr-defined]

    @property
    def consumer_class(self) -> type[_RabbitmqConsumer]:
        return _NodeRememberingConsumer


class _NodeRememberingConsumer(_RabbitmqConsumer):
    """dramatiq's consumer (it opens a connection of its own), telling its broker where it landed.

    dramatiq names its consumer class private, but a broker's ``consumer_class`` is how dramatiq
    itself chooses it; the pinned dramatiq (requirements.lock) is the one this is tested with.
    """

    def __init__(self, broker: NodePreferringBroker, *args: Any) -> None:
        super().__init__(broker, *args)
        broker.remember_node(self.connection)
