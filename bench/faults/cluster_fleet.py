"""The chaos run's fleet on a RabbitMQ cluster: two gateways and two worker groups, each on its own node.

Every process is given all three nodes in its ``BROKER_URL``; the order differs per group, so that
the first gateway and worker group connect to node 1 and the second ones to node 2 (a process
connects to the first node that answers and moves along the list when its node is lost). The
queues are quorum queues (``QUEUE_TYPE=quorum``), replicated on all three nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.fleet import free_port
from tests.support.rabbitmq_cluster import RabbitmqCluster, cluster_session, own_cluster_vhost

#: The node each group connects to first, then the others in turn.
FIRST_GROUP = (1, 2, 3)
SECOND_GROUP = (2, 3, 1)
#: The processes of the second group: a gateway and a worker group of their own.
SECOND_INSTANCES = ("web-2", "worker-2")


@dataclass
class ClusterFleet:
    """The cluster, the vhost of this run on it, and what each process group is told."""

    cluster: RabbitmqCluster
    vhost: str

    def broker_url(self, order: tuple[int, ...] = FIRST_GROUP) -> str:
        """``BROKER_URL`` listing the three nodes, the first one tried first."""
        return ";".join(self.cluster.amqp_url(node, self.vhost) for node in order)

    def environment(self) -> dict[str, str]:
        """What every process of the fleet gets: quorum queues, the first group's node order."""
        return {"QUEUE_TYPE": "quorum", "BROKER_URL": self.broker_url(FIRST_GROUP)}

    def second_group(self) -> dict[str, dict[str, str]]:
        """Environment overrides of the second gateway and worker group: node 2 first, own port."""
        url = self.broker_url(SECOND_GROUP)
        return {"web-2": {"BROKER_URL": url, "PORT": str(free_port())}, "worker-2": {"BROKER_URL": url}}

    def leader_of_most_queues(self) -> int:
        """The node leading the most of this run's queues (the one whose loss hurts most)."""
        return self.cluster.leader_of_most_queues(self.vhost)

    def kill(self, node: int) -> None:
        """SIGKILL node ``node``, as when its host dies."""
        self.cluster.kill(node)

    def revive(self, node: int) -> None:
        """Start node ``node`` again and wait until it rejoined the cluster."""
        self.cluster.revive(node)


@contextmanager
def cluster_fleet(name: str) -> Iterator[ClusterFleet]:
    """A 3-node cluster started for the run (and stopped after it) with a vhost ``name`` on it."""
    with cluster_session() as cluster, own_cluster_vhost(cluster, name):
        yield ClusterFleet(cluster, name)
