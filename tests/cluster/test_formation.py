"""The cluster scripts/rabbitmq-cluster starts: three real nodes, clustered, each reachable."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.cluster.amqp import channel_to, default_node_names
from tests.support.rabbitmq_cluster import NODES, ClusterError, RabbitmqCluster, cluster_session


def test_the_cluster_runs_three_nodes_and_each_sees_all_three(cluster: RabbitmqCluster):
    assert cluster.running_nodes(1) == sorted(cluster.node_names)  # rabbitmqctl cluster_status
    for node in NODES:
        seen = cluster.management("GET", "/api/nodes", node=node)
        assert isinstance(seen, list)
        assert sorted(n["name"] for n in seen if n["running"]) == sorted(cluster.node_names)
    status = cluster.run("status").splitlines()
    assert [line.split()[2] for line in status] == cluster.node_names
    assert all(": up, sees running: " + " ".join(cluster.node_names) in line for line in status)


def test_the_broker_url_lists_the_three_nodes_and_each_answers(cluster: RabbitmqCluster, vhost: str):
    url = cluster.run("urls", vhost).strip()
    assert url == cluster.broker_url(vhost)
    parts = url.split(";")
    assert [urllib.parse.urlsplit(part).port for part in parts] == [cluster.amqp_port(n) for n in NODES]
    for part in parts:
        with channel_to(part) as channel:
            assert channel.is_open
    assert cluster.run("urls").strip() == cluster.broker_url("/")
    assert all(part.endswith("/%2F") for part in cluster.run("urls").strip().split(";"))


def test_the_default_node_is_not_part_of_the_cluster(cluster: RabbitmqCluster):
    names = default_node_names()
    assert names
    assert not set(names) & set(cluster.node_names)


def test_a_second_session_waits_for_the_first_and_fails_saying_so(cluster: RabbitmqCluster):
    # This run's session holds the cluster; another one (a test run, a benchmark) must not stop it.
    with pytest.raises(ClusterError, match="another test run or benchmark"):
        with cluster_session(cluster, lock_timeout=1):
            pass

    assert cluster.all_answer()
