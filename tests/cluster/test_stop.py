"""`stop` leaves nothing behind and the machine's default node answering.

Runs last here (files run in name order); the `cluster` fixture starts the cluster again for any
test that would come after.
"""

from __future__ import annotations

from tests.cluster.amqp import default_node_names
from tests.support.rabbitmq_cluster import NODES, RabbitmqCluster


def test_stop_leaves_no_vm_and_no_directory_and_the_default_node_answers(cluster: RabbitmqCluster):
    assert len(cluster.vm_pids()) == 3
    assert cluster.base_dir.is_dir()

    cluster.stop()

    assert cluster.vm_pids() == []
    assert not cluster.base_dir.exists()
    assert not any(cluster.answers_amqp(node) for node in NODES)
    assert default_node_names()
