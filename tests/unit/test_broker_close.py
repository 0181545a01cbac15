"""Closing the broker at shutdown while other threads drop their channels and connections."""

from __future__ import annotations

from messaging.rabbitmq import FleetBroker


class Closable:
    """Stands for a pika channel or connection; closing one makes another drop out of the broker's
    sets, as a thread that notices its connection closed does (``del broker.connection``)."""

    def __init__(self, broker: FleetBroker, kind: str):
        self.broker, self.kind, self.closed, self.drops = broker, kind, False, None

    def close(self) -> None:
        self.closed = True
        if self.drops is not None:
            getattr(self.broker, self.drops.kind).discard(self.drops)


def test_close_closes_everything_while_another_thread_drops_its_connection():
    broker = FleetBroker(url="amqp://guest:guest@127.0.0.1:1/", dead_letter_ttl_seconds=60, middleware=[])
    channels = [Closable(broker, "channels") for _ in range(3)]
    connections = [Closable(broker, "connections") for _ in range(3)]
    for channel, connection in zip(channels, connections, strict=True):
        channel.drops = connection  # closing the channel drops a connection from the live set
    broker.channels.update(channels)
    broker.connections.update(connections)

    broker.close()  # dramatiq's own close raises RuntimeError: Set changed size during iteration

    assert all(item.closed for item in channels + connections)
