"""BROKER_URL may list the nodes of one cluster, separated by ``;``; QUEUE_TYPE picks the queues' type."""

from __future__ import annotations

import pika
import pytest

from config import SettingsError, load_settings
from config.broker_nodes import broker_nodes, node_label, vhost
from messaging.rabbitmq import fleet_broker

CLUSTER = "amqp://u:p@10.0.0.1:5701/shop;amqp://u:p@10.0.0.2:5702/shop;amqps://u:p@rabbit-c/shop"


def test_several_nodes_are_kept_in_order_as_dramatiq_reads_them():
    settings = load_settings({"BROKER_URL": CLUSTER})

    assert broker_nodes(settings.broker_url) == CLUSTER.split(";")
    parameters = fleet_broker(settings).parameters
    assert [(p.host, p.port, p.virtual_host) for p in parameters] == [
        ("10.0.0.1", 5701, "shop"),
        ("10.0.0.2", 5702, "shop"),
        ("rabbit-c", 5671, "shop"),
    ]


def test_spaces_and_an_empty_part_around_the_separators_are_dropped():
    settings = load_settings({"BROKER_URL": " amqp://a:5672/v ; amqp://b:5672/v; "})

    assert settings.broker_url == "amqp://a:5672/v;amqp://b:5672/v"


def test_one_node_stays_one_url():
    settings = load_settings({"BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/%2F"})

    assert isinstance(fleet_broker(settings).parameters, pika.URLParameters)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("amqp://a:5672/v;redis://b:6379/0", "got 'redis://b:6379/0'"),
        ("amqp://a:5672/v;nowhere", "got 'nowhere'"),
        ("amqp://a:5672/v;amqp://b:notaport/v", "node 'amqp://b:notaport/v' has a port that is not a number"),
        ("amqp://a:5672/shop;amqp://b:5672/other", "the nodes name different vhosts ('other', 'shop')"),
        ("amqp://a:5672/%2F;amqp://b:5672/shop", "the nodes name different vhosts ('/', 'shop')"),
        (" ; ", "got ';'"),  # the value as read: stripped
    ],
)
def test_a_wrong_node_or_mixed_vhosts_are_refused_in_one_line(raw, says):
    with pytest.raises(SettingsError) as refused:
        load_settings({"BROKER_URL": raw})

    message = str(refused.value)
    assert message.startswith("BROKER_URL: ") and says in message and "\n" not in message


def test_the_default_vhost_may_be_written_any_way_pika_reads_it():
    settings = load_settings({"BROKER_URL": "amqp://a:5672;amqp://b:5672/;amqp://c:5672/%2F"})

    assert {vhost(url) for url in broker_nodes(settings.broker_url)} == {"/"}


def test_a_node_is_labelled_by_host_and_port_without_credentials():
    assert node_label("amqp://guest:secret@10.0.0.1:5701/shop") == "10.0.0.1:5701"
    assert node_label("amqps://guest:secret@rabbit/shop") == "rabbit:5671"
    assert node_label("amqp://[::1]/shop") == "[::1]:5672"


@pytest.mark.parametrize(("raw", "expected"), [("", "classic"), ("Quorum", "quorum"), ("CLASSIC", "classic")])
def test_queue_type_is_a_word_read_in_any_case(raw, expected):
    assert load_settings({"QUEUE_TYPE": raw}).queue_type == expected


def test_an_unknown_queue_type_is_refused():
    with pytest.raises(SettingsError) as refused:
        load_settings({"QUEUE_TYPE": "stream"})

    assert str(refused.value) == "QUEUE_TYPE: expected one of classic, quorum, got 'stream'"
