"""``bench/chaos [--quick]``: the fleet under mixed load while everything fails once or more.

Starts the Procfile.dev processes under a supervisor that restarts them (as a PaaS does), sends
orders of every kind (paid, declined, unanswered, cancelled; refunded in parts, returned, with a
new address or a new way to pay), and meanwhile SIGKILLs a worker process every few seconds,
SIGKILLs the gateway once, restarts RabbitMQ and MariaDB once each and stops Redis for 30 s.
Then it waits for the fleet to settle and checks: no accepted order lost, every one settled
within 2 minutes, stock exact, the provider never refunding more than it captured and each order
keeping at most one charge, our refunds agreeing with the provider's, exactly one email per order
and announced event occurrence once the notify ledger caught up (with how late they came), every
answer one the contract allows, /readyz naming what was down and healthy again after. Prints a
table; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.faults import disruptions
from bench.faults.cluster_fleet import ClusterFleet, cluster_fleet
from bench.faults.emails import MailDirSink
from bench.faults.supervisor import Supervisor
from bench.faults.traffic import Traffic
from bench.faults.verdict import judge
from models.db import create_engine, create_sessionmaker
from tests.support.fleet import PROVIDERS, answers_ok, fleet_environment
from tests.support.isolation import own_database, own_vhost
from tests.support.polling import eventually_sync

PROCESSES = ["web", "worker", "scheduler", "psp", "mail"]
SETTLE_SECONDS = 120
#: Units of each of the six SKUs the other orders take from: few enough that some run out
#: during the load, so that orders are also REJECTED out_of_stock.
BASIC_STOCK = 25
#: Units of each SKU the refunded, returned and changed orders take from (three SKUs).
AFTER_SALE_STOCK = 2000
REDIS_DOWN_SECONDS = 30


@dataclass
class Plan:
    load_seconds: float
    shoppers: int
    kill_worker_every: float
    kill_gateway_at: float
    #: When the machine's RabbitMQ, MariaDB and Redis go away (None: not in this plan).
    rabbitmq_at: float | None
    mariadb_at: float | None
    redis_at: float | None
    outage_seconds: float = 6.0
    #: ``--cluster``: when the RabbitMQ node leading the most queues is SIGKILLed, and for how long.
    node_at: float | None = None
    node_down_seconds: float = 20.0


QUICK = Plan(
    load_seconds=70,
    shoppers=12,
    kill_worker_every=6,
    kill_gateway_at=10,
    rabbitmq_at=18,
    mariadb_at=32,
    redis_at=44,
)
#: ``--cluster``: 2 gateways and 2 worker groups on a 3-node cluster with quorum queues; a node lost.
CLUSTER_QUICK = Plan(
    load_seconds=60,
    shoppers=12,
    kill_worker_every=8,
    kill_gateway_at=10,
    rabbitmq_at=None,
    mariadb_at=None,
    redis_at=None,
    node_at=18,
    node_down_seconds=20,
)
CLUSTER_FULL = Plan(
    load_seconds=240,
    shoppers=24,
    kill_worker_every=5,
    kill_gateway_at=40,
    rabbitmq_at=None,
    mariadb_at=None,
    redis_at=None,
    node_at=80,
    node_down_seconds=60,
)
FULL = Plan(
    load_seconds=300,
    shoppers=24,
    kill_worker_every=5,
    kill_gateway_at=40,
    rabbitmq_at=90,
    mariadb_at=160,
    redis_at=220,
)


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)
    readiness: list[tuple[float, int | None, str]] = field(default_factory=list)
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, what: str) -> None:
        self.events.append((self.now(), what))
        print(f"  {self.now():6.1f}s  {what}", flush=True)


async def watch_readiness(url: str, timeline: Timeline, stop: asyncio.Event) -> None:
    """Poll /readyz twice a second, keeping what it said (and which gateway said it)."""
    async with aiohttp.ClientSession() as client:
        while not stop.is_set():
            try:
                async with client.get(url, timeout=aiohttp.ClientTimeout(total=3)) as response:
                    body = await response.json(content_type=None)
                    said = f"{body.get('detail', '')} {body.get('checks', '')}"
                    timeline.readiness.append((timeline.now(), response.status, f"{url}: {said}"))
            except Exception:
                timeline.readiness.append((timeline.now(), None, f"{url}: no answer"))
            await asyncio.sleep(0.5)


async def inject_faults(
    plan: Plan,
    supervisor: Supervisor,
    timeline: Timeline,
    rng: random.Random,
    cluster: ClusterFleet | None = None,
) -> dict:
    """Run the fault schedule; returns how many of each fault happened."""
    counts = {"worker processes killed": 0, "gateway killed": 0}
    loop = asyncio.get_running_loop()
    planned = [
        (plan.kill_gateway_at, "gateway"),
        (plan.rabbitmq_at, "rabbitmq"),
        (plan.mariadb_at, "mariadb"),
        (plan.redis_at, "redis"),
        (plan.node_at, "rabbitmq node"),
        *[(t, "worker") for t in _every(plan.kill_worker_every, 3, plan.load_seconds)],
    ]
    schedule = sorted((at, fault) for at, fault in planned if at is not None)
    node_lost: asyncio.Task[None] | None = None

    async def lose_a_node() -> None:
        assert cluster is not None, "a node is lost only in the cluster run"
        node = await loop.run_in_executor(None, cluster.leader_of_most_queues)
        began = timeline.now()
        await loop.run_in_executor(None, cluster.kill, node)
        timeline.note(f"SIGKILL RabbitMQ node {node} (it led the most queues)")
        counts["rabbitmq node killed (leader of the most queues)"] = node
        await asyncio.sleep(plan.node_down_seconds)
        await loop.run_in_executor(None, cluster.revive, node)
        timeline.windows["rabbitmq node"] = (began, timeline.now())
        timeline.note(f"RabbitMQ node {node} is back")

    for at, fault in schedule:
        await asyncio.sleep(max(at - timeline.now(), 0))
        if fault == "rabbitmq node":
            # Beside the other faults: workers and the gateway keep being killed while it is down.
            node_lost = asyncio.create_task(lose_a_node())
        elif fault == "worker":
            pid = supervisor.kill_one_worker_process(rng)
            if pid:
                counts["worker processes killed"] += 1
                timeline.note(f"SIGKILL worker process {pid}")
        elif fault == "gateway":
            timeline.note(f"SIGKILL gateway {supervisor.kill('web')}")
            counts["gateway killed"] += 1
        elif fault in ("rabbitmq", "mariadb"):
            stop, start = {
                "rabbitmq": (disruptions.stop_rabbitmq, disruptions.start_rabbitmq),
                "mariadb": (disruptions.stop_mariadb, disruptions.ensure_services),
            }[fault]
            timeline.note(f"stopping {fault}")
            began = timeline.now()
            await loop.run_in_executor(None, stop)
            await asyncio.sleep(plan.outage_seconds)
            await loop.run_in_executor(None, start)
            timeline.windows[fault] = (began, timeline.now())
            timeline.note(f"{fault} is back")
        elif fault == "redis":
            timeline.note("stopping redis for 30 s")
            began = timeline.now()
            await loop.run_in_executor(None, disruptions.stop_redis)
            await asyncio.sleep(REDIS_DOWN_SECONDS)
            await loop.run_in_executor(None, disruptions.ensure_services)
            timeline.windows["redis"] = (began, timeline.now())
            timeline.note("redis is back")
    if node_lost is not None:
        await node_lost
    return counts


def _every(step: float, start: float, end: float) -> list[float]:
    times, t = [], start
    while t < end:
        times.append(t)
        t += step
    return times


def readiness_findings(timeline: Timeline) -> tuple[dict[str, str], list[str]]:
    """Did /readyz name each dependency while it was down, and answer 200 again after?"""
    figures, violations = {}, []
    for fault, dependency in (("rabbitmq", "broker"), ("mariadb", "database")):
        if fault not in timeline.windows:
            continue
        began, ended = timeline.windows[fault]
        during = [(t, s, d) for t, s, d in timeline.readiness if began <= t <= ended]
        named = any(s == 503 and dependency in d for _, s, d in during)
        recovered = next((t for t, s, _ in timeline.readiness if t > ended and s == 200), None)
        figures[f"/readyz while {fault} was down"] = (
            f"503 naming {dependency}" if named else "never 503"
        ) + (f", 200 again {recovered - ended:.1f}s after" if recovered else ", never 200 again")
        if not named:
            violations.append(f"/readyz did not report {dependency} down while {fault} was stopped")
        if recovered is None:
            violations.append(f"/readyz never answered 200 after {fault} came back")
    if "rabbitmq node" in timeline.windows:
        # The cluster serves while two of its three nodes do: ready all along, on every gateway.
        began, ended = timeline.windows["rabbitmq node"]
        during = [(s, d) for t, s, d in timeline.readiness if began <= t <= ended and s is not None]
        refused = [d for s, d in during if s != 200]
        figures["/readyz while a RabbitMQ node was down"] = (
            f"200 all along ({len(during)} answers)"
            if not refused
            else f"{len(refused)} of {len(during)} not 200"
        )
        if refused:
            violations.append(f"/readyz was not 200 while two nodes served, e.g. {refused[0]}")
    return figures, violations


async def run(
    plan: Plan,
    seed: int,
    workdir: Path,
    database_url: str,
    broker_url: str,
    cluster: ClusterFleet | None = None,
    provider: str = "sandbox",
) -> int:
    rng = random.Random(seed)
    timeline = Timeline()
    try:
        if True:  # the fleet's database and vhost are made by main(), outside the event loop
            env = fleet_environment(
                database_url=database_url,
                broker_url=broker_url,
                redis_url="redis://127.0.0.1:6379/13",
                workdir=workdir,
                provider=provider,
                ADMIN_TOKEN="chaos-admin-token",
                HOLD_SECONDS="5",
                MAX_UNPAID_ORDERS="1000",
                RECONCILE_EVERY_SECONDS="10",
                OUTBOX_RELAY_AFTER_SECONDS="2",
                LOG_FORMAT="json",
                WORKER_PROCESSES="2",
                WORKER_THREADS="4",
                **(cluster.environment() if cluster else {}),
            )
            overrides = cluster.second_group() if cluster else {}
            supervisor = Supervisor([*PROCESSES, *overrides], env, workdir / "logs", overrides=overrides)
            supervisor.start()
            gateway = f"http://127.0.0.1:{env['PORT']}"
            gateways = [
                gateway,
                *(f"http://127.0.0.1:{o['PORT']}" for o in overrides.values() if "PORT" in o),
            ]
            eventually_sync(
                lambda: (
                    all(answers_ok(f"{url}/readyz") for url in gateways)
                    and answers_ok(f"{env['PSP_URL']}/healthz")
                ),
                timeout=60,
                what="the fleet",
            )
            print(f"chaos run (seed {seed}, provider {provider}); logs in {workdir}", flush=True)
            timeline = Timeline()
            traffic = Traffic(gateway, env["PSP_URL"], env["ADMIN_TOKEN"], rng)
            try:
                counts = await _load_and_faults(plan, traffic, supervisor, timeline, rng, gateways, cluster)
                load_ended_at = time.time()
                engine = create_engine(database_url, pool_size=4)
                try:
                    # The sink's store, read only once the notify ledger caught up.
                    verdict = await judge(
                        create_sessionmaker(engine),
                        env["PSP_URL"],
                        traffic.accepted,
                        MailDirSink(env["MAIL_DIR"]),
                        SETTLE_SECONDS,
                        load_ended_at,
                    )
                finally:
                    await engine.dispose()
            finally:
                supervisor.stop()
            readiness, readiness_violations = readiness_findings(timeline)
            figures = {
                "orders accepted": len(traffic.accepted),
                "orders not accepted (gave up)": traffic.not_accepted,
                "follow-ups given up (no answer before their deadline)": traffic.follow_up_failures,
                **{
                    f"kind {kind}": sum(1 for a in traffic.accepted if a.kind == kind)
                    for kind in sorted({a.kind for a in traffic.accepted})
                },
                **traffic.figures(),
                **counts,
                **(
                    {"gateways / worker groups": f"{len(gateways)} / {len(gateways)} (quorum, 3 nodes)"}
                    if cluster
                    else {
                        "rabbitmq restarted": "rabbitmq" in timeline.windows,
                        "mariadb restarted": "mariadb" in timeline.windows,
                        "redis stopped (s)": REDIS_DOWN_SECONDS if "redis" in timeline.windows else 0,
                    }
                ),
                "process restarts": ", ".join(f"{k} {v}" for k, v in sorted(supervisor.restarts.items()))
                or "none",
                **readiness,
                **verdict.figures,
            }
            violations = (
                verdict.violations
                + readiness_violations
                + _restart_violations(supervisor, counts)
                + _answer_violations(traffic)
            )
            _print_table(figures, violations)
            return 1 if violations else 0
    finally:
        disruptions.ensure_services()


def _answer_violations(traffic: Traffic) -> list[str]:
    """Answers the contract does not allow for the request that got them."""
    if not traffic.unexpected:
        return []
    return [
        f"{len(traffic.unexpected)} requests answered in a way the contract does not allow, "
        f"e.g. {'; '.join(traffic.unexpected[:3])}"
    ]


def _restart_violations(supervisor: Supervisor, counts: dict) -> list[str]:
    """Only the processes we killed may have been restarted: the rest must have reconnected alone
    (a worker process killed may be in either worker group)."""
    violations = []
    restarts: Counter[str] = Counter()
    for name in supervisor.names:
        restarts[name if name.split("-")[0] != "worker" else "worker"] += supervisor.restarts[name]
    expected = {"web": counts["gateway killed"], "worker": counts["worker processes killed"]}
    for name, times in sorted(restarts.items()):
        if times > expected.get(name, 0):
            violations.append(
                f"{name} restarted {times} times but was killed "
                f"{expected.get(name, 0)} times: it did not survive an outage by itself"
            )
    return violations


async def _load_and_faults(
    plan: Plan,
    traffic: Traffic,
    supervisor: Supervisor,
    timeline: Timeline,
    rng: random.Random,
    gateways: list[str],
    cluster: ClusterFleet | None,
) -> dict:
    stop_watching = asyncio.Event()
    watchers = [
        asyncio.create_task(watch_readiness(f"{url}/readyz", timeline, stop_watching)) for url in gateways
    ]
    async with aiohttp.ClientSession() as client:
        skus = [await traffic.item(client, stock=BASIC_STOCK) for _ in range(6)]
        # Deep stock for the orders that go on after the sale: they must be placed to get there.
        traffic.after_sale_skus = [await traffic.item(client, stock=AFTER_SALE_STOCK) for _ in range(3)]
        tokens = [await traffic.customer(client) for _ in range(plan.shoppers)]
        until = time.monotonic() + plan.load_seconds
        # Each shopper keeps to one gateway, the shoppers spread over them.
        shoppers = [
            traffic.shopper(client, token, skus, until, pause=0.2, gateway=gateways[n % len(gateways)])
            for n, token in enumerate(tokens)
        ]
        results = await asyncio.gather(inject_faults(plan, supervisor, timeline, rng, cluster), *shoppers)
        await traffic.finish()
    timeline.note("faults over; waiting for the fleet to settle")
    stop_watching.set()
    await asyncio.gather(*watchers)
    return results[0]


def _print_table(figures: dict, violations: list[str]) -> None:
    print("\n| chaos run | |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value} |")
    print(f"| violations | {len(violations)} |\n")
    for violation in violations:
        print(f"VIOLATION: {violation}")
    print("chaos run passed" if not violations else "chaos run FAILED", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="about 2-3 minutes (the CI run)")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="2 gateways and 2 worker groups on a 3-node RabbitMQ cluster (scripts/rabbitmq-cluster) with "
        "quorum queues; the node leading the most queues is SIGKILLed during the load and brought back",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the order mix and the kills")
    parser.add_argument(
        "--provider",
        choices=PROVIDERS,
        default="sandbox",
        help="the payment provider: the sandbox's own API, or Stripe through its SDK and the sandbox's "
        "Stripe face (default: sandbox)",
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="orders-chaos-"))
    name = f"orders_chaos_{uuid.uuid4().hex[:8]}"
    if args.cluster:
        plan = CLUSTER_QUICK if args.quick else CLUSTER_FULL
        with own_database(name) as database_url, cluster_fleet(name) as cluster:
            return asyncio.run(
                run(plan, args.seed, workdir, database_url, cluster.broker_url(), cluster, args.provider)
            )
    with own_database(name) as database_url, own_vhost(name) as broker_url:
        plan = QUICK if args.quick else FULL
        return asyncio.run(run(plan, args.seed, workdir, database_url, broker_url, provider=args.provider))


if __name__ == "__main__":
    sys.exit(main())
