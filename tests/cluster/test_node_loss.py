"""A node lost (its VM SIGKILLed) and brought back: the quorum queue stays available throughout."""

from __future__ import annotations

from tests.cluster.amqp import (
    channel_to,
    declare_quorum_queue,
    default_node_names,
    get_one,
    publish_confirmed,
)
from tests.cluster.test_quorum_replication import replicated
from tests.support.polling import eventually_sync
from tests.support.rabbitmq_cluster import NODES, RabbitmqCluster


def test_killing_the_leader_keeps_the_queue_available_and_revive_rejoins_it(
    cluster: RabbitmqCluster, vhost: str
):
    with channel_to(cluster.amqp_url(1, vhost)) as channel:
        name = declare_quorum_queue(channel)
        publish_confirmed(channel, name, b"before")
    queue = eventually_sync(lambda: replicated(cluster, vhost, name), what=f"{name} replicated")
    lost = cluster.node_of(queue["leader"])
    first, second = (node for node in NODES if node != lost)

    cluster.kill(lost)

    assert not cluster.answers_amqp(lost)
    assert not cluster.all_answer()  # `status` exits 1 while a node is down

    def new_leader() -> str | None:
        leader = cluster.queue(vhost, name, node=first).get("leader")
        return leader if leader and leader != cluster.node_name(lost) else None

    assert cluster.node_of(eventually_sync(new_leader, timeout=30, what="a new leader")) in (first, second)
    with channel_to(cluster.amqp_url(first, vhost)) as through_first:
        publish_confirmed(through_first, name, b"while a node is lost")
    with channel_to(cluster.amqp_url(second, vhost)) as through_second:
        assert get_one(through_second, name) == b"before"
        assert get_one(through_second, name) == b"while a node is lost"

    cluster.revive(lost)

    assert cluster.running_nodes(lost) == sorted(cluster.node_names)
    eventually_sync(lambda: replicated(cluster, vhost, name), timeout=30, what=f"node {lost} back in {name}")
    with channel_to(cluster.amqp_url(lost, vhost)) as through_revived:
        publish_confirmed(through_revived, name, b"after")
        assert get_one(through_revived, name) == b"after"
    assert not set(default_node_names()) & set(cluster.node_names)
