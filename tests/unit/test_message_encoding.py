"""dramatiq messages are written and read by orjson, and stay JSON any JSON reader takes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dramatiq
import pytest

import messaging.rabbitmq  # noqa: F401  (installs the encoder, as in every process of the fleet)
from messaging.encoding import OrjsonEncoder


def a_message(**kwargs) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name="reserve",
        actor_name="reserve",
        args=("0f8fad5b-d9cb-469f-a165-70867728950e",),
        kwargs={"attempt": 1, "items": [{"sku": "SKU-1", "quantity": 3}], "note": "Zoë ✓", **kwargs},
        options={"max_retries": 20, "eta": 1_700_000_000_000, "flag": True, "nothing": None},
    )


def test_every_process_importing_the_broker_module_encodes_with_orjson():
    assert isinstance(dramatiq.get_encoder(), OrjsonEncoder)


def test_a_message_comes_back_as_it_went():
    message = a_message()

    body = message.encode()

    assert dramatiq.Message.decode(body) == message
    assert dramatiq.Message.decode(body).asdict() == message.asdict()


def test_the_body_is_json_that_dramatiqs_own_encoder_and_the_standard_library_read():
    message = a_message()

    body = message.encode()

    assert json.loads(body.decode("utf-8")) == json.loads(json.dumps(message.asdict()))
    assert dramatiq.JSONEncoder().decode(body) == json.loads(json.dumps(message.asdict()))


def test_bodies_written_by_dramatiqs_own_encoder_are_read():
    message = a_message(ratio=0.5)

    body = dramatiq.JSONEncoder().encode(message.asdict())

    assert OrjsonEncoder().decode(body) == json.loads(json.dumps(message.asdict()))
    assert OrjsonEncoder().decode(b'{"value":NaN}')["value"] != 0  # what json.dumps writes for nan


def test_keys_that_are_not_strings_become_strings_as_with_json_dumps():
    data = {"counts": {1: "one", 2: "two"}}

    assert json.loads(OrjsonEncoder().encode(data)) == json.loads(json.dumps(data))


@pytest.mark.parametrize("value", [datetime.now(UTC), 2**64, object()])
def test_what_would_not_arrive_as_sent_is_refused_when_sending(value):
    # json.dumps refuses datetimes too; integers past 64 bits orjson would read back as floats.
    with pytest.raises(TypeError):
        OrjsonEncoder().encode({"value": value})


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b'{"a":'])
def test_a_body_that_is_not_json_is_a_decode_error(body):
    with pytest.raises(dramatiq.DecodeError):
        OrjsonEncoder().decode(body)
