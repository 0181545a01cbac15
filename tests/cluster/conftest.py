"""A 3-node RabbitMQ cluster of real nodes (scripts/rabbitmq-cluster), started once per test run.

It is started before the first test here and stopped after the last one (package scope: the rest of
the suite does not share the machine's two cores with three idle brokers). If the cluster cannot
start, every test here fails with what the script said; none is skipped.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support.rabbitmq_cluster import RabbitmqCluster, cluster_session, own_cluster_vhost


@pytest.fixture(scope="package")
def rabbitmq_cluster():
    """The cluster for these tests: started at their first use, stopped after the last."""
    with cluster_session() as cluster:
        yield cluster


@pytest.fixture
def cluster(rabbitmq_cluster: RabbitmqCluster) -> RabbitmqCluster:
    """The session's cluster with every node answering (a test that lost a node brings it back)."""
    rabbitmq_cluster.ensure_running()
    return rabbitmq_cluster


@pytest.fixture
def vhost(cluster: RabbitmqCluster, run_name: str):
    """A vhost of the test's own on the cluster (its name), deleted afterwards."""
    name = f"{run_name}_{uuid.uuid4().hex[:6]}"
    with own_cluster_vhost(cluster, name):
        yield name
