"""The arguments every fleet queue is declared with, for each QUEUE_TYPE (built, never sent here)."""

from __future__ import annotations

import pytest

from messaging.rabbitmq import FleetBroker, queue_type_arguments

URL = "amqp://guest:guest@127.0.0.1:1/%2F"


def broker(queue_type: str, **options) -> FleetBroker:
    return FleetBroker(url=URL, dead_letter_ttl_seconds=60, queue_type=queue_type, middleware=[], **options)


def test_classic_queues_are_declared_exactly_as_before_queue_type_existed():
    classic = broker("classic")

    assert classic.queue_arguments("reserve") == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "reserve.XQ",
    }
    assert classic.queue_arguments("reserve.DQ") == classic.queue_arguments("reserve")
    assert classic.queue_arguments("reserve.XQ") == {"x-message-ttl": 60_000}


def test_quorum_puts_every_queue_of_a_step_on_quorum_and_keeps_the_dead_letter_ttl():
    quorum = broker("quorum")

    for name in ("reserve", "reserve.DQ"):
        assert quorum.queue_arguments(name) == {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "reserve.XQ",
            "x-queue-type": "quorum",
        }
    assert quorum.queue_arguments("reserve.XQ") == {"x-message-ttl": 60_000, "x-queue-type": "quorum"}


def test_quorum_drops_the_priority_quorum_queues_refuse():
    assert broker("classic", max_priority=10).queue_arguments("notify")["x-max-priority"] == 10
    assert "x-max-priority" not in broker("quorum", max_priority=10).queue_arguments("notify")


def test_services_consuming_events_declare_their_queues_with_the_same_type():
    assert queue_type_arguments("classic") == {}
    assert queue_type_arguments("quorum") == {"x-queue-type": "quorum"}
    with pytest.raises(ValueError, match="queue type must be one of classic, quorum"):
        queue_type_arguments("stream")
