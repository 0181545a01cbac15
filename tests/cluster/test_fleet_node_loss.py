"""The fleet on the 3-node cluster with quorum queues: the node its gateway, worker and scheduler
are connected to is SIGKILLed while orders come in; they carry on through the other two nodes
without a restart, every order placed before and after the kill ends PLACED, and /readyz answers
200 throughout, naming the lost node."""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from datetime import UTC, datetime

import aiohttp
import pytest

from tests.support import isolation
from tests.support.api import Api
from tests.support.fleet import Fleet, fleet_environment
from tests.support.isolation import own_database
from tests.support.polling import eventually
from tests.support.rabbitmq_cluster import RabbitmqCluster
from tests.support.report import report

#: Orders taken before the kill, and while and after it happens.
BEFORE, AFTER = 4, 8


@pytest.fixture
def fleet(cluster: RabbitmqCluster, vhost: str, run_name, tmp_path):
    """The Procfile.dev fleet on the cluster: BROKER_URL lists nodes 1, 2, 3, so every process
    connects to node 1 first; queues are quorum queues."""
    name = f"{run_name}_{uuid.uuid4().hex[:6]}"
    with own_database(name) as database_url:
        env = fleet_environment(
            database_url=database_url,
            broker_url=cluster.broker_url(vhost),
            redis_url=isolation.REDIS_URL,
            workdir=tmp_path,
            ADMIN_TOKEN="cluster-admin-token",
            QUEUE_TYPE="quorum",
        )
        fleet = Fleet(env=env, log_path=tmp_path / "fleet.log")
        fleet.start()
        try:
            yield fleet
        finally:
            fleet.stop()
            print(f"\nfleet log: {fleet.log_path}")


def connection_nodes(cluster: RabbitmqCluster, vhost: str) -> list[int]:
    """The node of every AMQP connection open in ``vhost``, sorted."""
    path = f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}/connections"
    connections = cluster.management("GET", path)
    assert isinstance(connections, list)
    return sorted(cluster.node_of(connection["node"]) for connection in connections)


async def watch_readiness(api: Api, seen: list[tuple[int, dict]], stop: asyncio.Event) -> None:
    """Ask /readyz five times a second until ``stop``, keeping each answer."""
    while not stop.is_set():
        status, body, _ = await api.call("GET", "/readyz")
        seen.append((status, body.get("checks", {})))
        await asyncio.sleep(0.2)


async def test_the_fleet_carries_on_through_the_other_nodes_when_its_node_is_killed(
    cluster: RabbitmqCluster, vhost: str, fleet: Fleet
):
    lost = f"broker 127.0.0.1:{cluster.amqp_port(1)}"
    async with aiohttp.ClientSession() as client:
        api = Api(client, fleet.gateway_url, fleet.env["ADMIN_TOKEN"])
        sku = await api.item(stock=BEFORE + AFTER)
        # A customer per order: one may only have MAX_UNPAID_ORDERS waiting at once.
        customers = [await api.customer() for _ in range(BEFORE + AFTER)]

        async def order(token: str) -> tuple[str, str]:
            status, body, _ = await api.order(token, {sku: 1})
            assert status == 202, body
            return token, body["id"]

        before = [await order(token) for token in customers[:BEFORE]]
        for token, order_id in before:
            await api.final_order(token, order_id, {"PLACED"})
        on_node_1 = connection_nodes(cluster, vhost)

        readiness: list[tuple[int, dict]] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_readiness(api, readiness, stop))
        try:
            during = [await order(token) for token in customers[BEFORE : BEFORE + AFTER // 2]]
            killed_at = datetime.now(UTC)
            await asyncio.to_thread(cluster.kill, 1)
            after = [await order(token) for token in customers[BEFORE + AFTER // 2 :]]
            placed = [await api.final_order(t, o, {"PLACED"}, timeout=90) for t, o in during + after]
            # A few more readiness answers with every process on nodes 2 and 3.
            answered = len(readiness)

            async def five_more_answers() -> bool:
                return len(readiness) >= answered + 5

            await eventually(five_more_answers, what="five more /readyz answers")
        finally:
            stop.set()
            await watcher

        async def moved_off_node_1() -> list[int] | None:
            # Management lists a connection only once its node has reported it (stats every few
            # seconds), so the list can lag behind the reconnections: ask until it shows them.
            nodes = await asyncio.to_thread(connection_nodes, cluster, vhost)
            return nodes if nodes and set(nodes) <= {2, 3} else None

        moved = await eventually(
            moved_off_node_1, timeout=30, what="the fleet's connections on nodes 2 and 3"
        )
        assert await api.available(sku) == 0

    assert on_node_1 and set(on_node_1) == {1}  # gateway, worker and scheduler all started on node 1
    assert fleet.process is not None and fleet.process.poll() is None  # nothing exited, nothing restarted
    assert len(placed) == AFTER and {order["payment"]["status"] for order in placed} == {"SUCCEEDED"}
    assert moved and set(moved) <= {2, 3}
    assert {status for status, _ in readiness} == {200}
    assert any(checks.get(lost, "").startswith("down") for _, checks in readiness)
    assert all(checks["broker"] == "ok" for _, checks in readiness)

    placed_after = [
        (datetime.fromisoformat(o["history"][-1]["at"].replace("Z", "+00:00")) - killed_at).total_seconds()
        for o in placed
    ]
    downs = sum(checks.get(lost, "").startswith("down") for _, checks in readiness)
    report(
        f"fleet on the cluster, node 1 killed: the {AFTER} orders taken around the kill all PLACED "
        f"within {max(placed_after):.1f} s of it; /readyz 200 {len(readiness)} times, "
        f"{downs} of them naming node 1 down"
    )

    await asyncio.to_thread(cluster.revive, 1)
