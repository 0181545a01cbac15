"""A quorum queue on the cluster: replicated on the three nodes, usable through any of them."""

from __future__ import annotations

from collections import Counter

from tests.cluster.amqp import channel_to, declare_quorum_queue, get_one, publish_confirmed
from tests.support.polling import eventually_sync
from tests.support.rabbitmq_cluster import RabbitmqCluster


def replicated(cluster: RabbitmqCluster, vhost: str, name: str) -> dict | None:
    """The queue once its three members are online and it has a leader, else None."""
    queue = cluster.queue(vhost, name)
    online = sorted(queue.get("online") or [])
    return queue if queue.get("leader") and online == sorted(cluster.node_names) else None


def test_a_quorum_queue_declared_through_one_node_has_the_three_nodes_as_members(
    cluster: RabbitmqCluster, vhost: str
):
    with channel_to(cluster.amqp_url(2, vhost)) as channel:
        name = declare_quorum_queue(channel)

    queue = eventually_sync(lambda: replicated(cluster, vhost, name), what=f"{name} replicated")

    assert queue["type"] == "quorum"
    assert sorted(queue["members"]) == sorted(cluster.node_names)
    assert queue["leader"] in cluster.node_names


def test_a_message_confirmed_through_node_1_is_consumed_through_node_3(cluster: RabbitmqCluster, vhost: str):
    with channel_to(cluster.amqp_url(1, vhost)) as one:
        name = declare_quorum_queue(one)
        publish_confirmed(one, name, b"through node 1")

    with channel_to(cluster.amqp_url(3, vhost)) as three:
        assert get_one(three, name) == b"through node 1"
        assert three.basic_get(name)[0] is None  # exactly once


def test_leader_of_most_queues_names_the_node_leading_the_most_quorum_queues(
    cluster: RabbitmqCluster, vhost: str
):
    names = []
    for node in (3, 3, 2):
        with channel_to(cluster.amqp_url(node, vhost)) as channel:
            names.append(declare_quorum_queue(channel))
    queues = [
        eventually_sync(lambda name=name: replicated(cluster, vhost, name), what=f"{name} replicated")
        for name in names
    ]
    leaders = Counter(cluster.node_of(queue["leader"]) for queue in queues)
    most = max(leaders.values())

    answer = cluster.leader_of_most_queues(vhost)

    assert leaders[answer] == most
    assert answer == min(node for node, count in leaders.items() if count == most)  # ties: the lowest


def test_leader_of_most_queues_counts_a_classic_queue_by_its_node(cluster: RabbitmqCluster, vhost: str):
    with channel_to(cluster.amqp_url(2, vhost)) as channel:
        channel.queue_declare("classic", durable=True)

    assert cluster.queue(vhost, "classic")["node"] == cluster.node_name(2)
    assert cluster.leader_of_most_queues(vhost) == 2
