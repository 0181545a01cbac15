"""dramatiq's message encoder for the fleet: the same JSON as dramatiq's own, written by orjson.

Messages stay plain UTF-8 JSON objects, so dramatiq's ``JSONEncoder``, RabbitMQ's management UI
and ``orders-admin dead-letters`` read them as before; only the work of writing and reading them
is cheaper. :mod:`messaging.rabbitmq` installs the encoder, so every process that publishes or
consumes (gateway, scheduler, workers, ``orders-admin``) uses it.
"""

from __future__ import annotations

import json

import dramatiq
import orjson
from dramatiq.encoder import MessageData

#: Keys that are not strings become strings, as with ``json.dumps``. Datetimes and dataclasses go
#: to the (absent) ``default``, so they are refused as ``json.dumps`` refuses them, rather than
#: reaching the actor as strings.
ENCODE_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonEncoder(dramatiq.Encoder):
    """Encodes messages as compact JSON with orjson; decodes with orjson.

    orjson refuses integers past 64 bits when encoding, and would read them back as floats: such a
    message raises ``TypeError`` here instead of losing digits on the way. Bodies orjson cannot
    read but the standard library can (``NaN`` from a producer using ``json.dumps``) are still read.
    """

    def encode(self, data: MessageData) -> bytes:
        return orjson.dumps(data, option=ENCODE_OPTIONS)

    def decode(self, data: bytes) -> MessageData:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise dramatiq.DecodeError(f"failed to decode message {data!r}", data, error) from None


def install() -> None:
    """Make :class:`OrjsonEncoder` the encoder of every dramatiq message of this process."""
    if not isinstance(dramatiq.get_encoder(), OrjsonEncoder):
        dramatiq.set_encoder(OrjsonEncoder())
