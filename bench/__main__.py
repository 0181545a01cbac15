"""``python -m bench [--quick] [--only ...] [--baseline REV] [--profile [DIR]]``: run the benchmark,
print its table, write bench/results/latest.json.

The fleet is the Procfile.dev processes, each started on its own (:mod:`bench.fleet`). The
floor phase (:mod:`bench.floor`) first measures what a database round trip and a gateway request
cost alone on this fleet; with the ceiling's cost of a message, they give the lower bound of CPU
per placed order in this stack. The e2e phase reads CPU time per process and MariaDB's statement
counters over its measured window, then runs the open loop at half the closed-loop rate. The
expiry phase runs while an open loop at that same rate sends orders (customers of its own, SKUs
apart from the holds'), from the holds' creation until the last one falls due; its POST and
POST-to-PLACED latencies are reported beside the expiry figures. ``--baseline REV`` measures the
e2e phase again on the fleet of commit REV (:mod:`bench.baseline`) in the same run and prints
both side by side.

Exit status 0 when the run completed, whether or not every target was met (misses are in the
table); 1 when the run itself is broken: the flash sale oversold or undersold, an accepted order
was lost or never placed, or a hold was never released.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import structlog

from bench import baseline, ceiling, e2e, expiry, flash, floor, services
from bench.fleet import DirectFleet, FleetTree, current_tree, release
from bench.population import create_accounts, create_items, tokens_for
from bench.procs import CpuMeter, MemoryWatch
from bench.profiling import Profiler
from bench.redis_peer import RedisPeers
from bench.report import render_cluster_comparison, render_comparison, render_floor, render_table, targets
from bench.sql_counters import GlobalStatus, SqlWindow, StatementTally
from config import load_settings
from models.clock import utcnow
from models.db import create_engine
from tests.support.fleet import PROVIDERS, fleet_environment
from tests.support.rabbitmq_cluster import RabbitmqCluster, cluster_session, own_cluster_vhost

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Mode:
    name: str
    ceiling_messages: int
    e2e_clients: int
    e2e_warmup_s: float
    e2e_window_s: float
    open_window_s: float
    flash_buyers: int
    flash_units: int
    holds: int
    hold_lead_s: float
    hold_window_s: float
    hold_grace_s: float
    background_keys: int
    floor_s: float


QUICK = Mode(
    "quick",
    ceiling_messages=5_000,
    e2e_clients=48,
    e2e_warmup_s=2,
    e2e_window_s=15,
    open_window_s=10,
    flash_buyers=200,
    flash_units=10,
    holds=5_000,
    hold_lead_s=20,
    hold_window_s=60,
    hold_grace_s=15,
    background_keys=200_000,
    floor_s=5,
)
FULL = Mode(
    "full",
    ceiling_messages=30_000,
    e2e_clients=48,
    e2e_warmup_s=5,
    e2e_window_s=60,
    open_window_s=30,
    flash_buyers=1000,
    flash_units=10,
    holds=50_000,
    hold_lead_s=150,
    hold_window_s=600,
    hold_grace_s=60,
    background_keys=200_000,
    floor_s=10,
)


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


def _quiet_logging() -> None:
    # The bench process itself uses the fleet's publisher; its per-message log lines are noise here.
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


class MeasuredWindow:
    """What the e2e phase reads over its measured window: CPU per process, MariaDB's counters,
    and (with ``--profile``) the flame graphs."""

    def __init__(self, cpu: CpuMeter, sql: SqlWindow, profiler: Profiler | None, seconds: float):
        self.cpu, self.sql, self.profiler, self.seconds = cpu, sql, profiler, seconds

    async def begin(self) -> None:
        await self.sql.begin()
        await asyncio.to_thread(self.cpu.start)
        if self.profiler:
            self.profiler.start("e2e", self.seconds)

    async def end(self) -> None:
        await asyncio.to_thread(self.cpu.stop)
        await self.sql.end()


async def _e2e(
    fleet: DirectFleet,
    engine,
    tally: StatementTally,
    mode: Mode,
    args,
    log,
    tokens: list[str],
    skus: list[str],
    profiler: Profiler | None,
    open_rate: float | None,
) -> dict:
    """The closed loop with its window's CPU and SQL figures, then the open loop."""
    cpu = CpuMeter(fleet.roles)
    database = fleet.env["DATABASE_URL"].rsplit("/", 1)[1]
    async with GlobalStatus(fleet.env["DATABASE_URL"]) as status:
        window = MeasuredWindow(cpu, SqlWindow(status, tally, database), profiler, mode.e2e_window_s)
        measured = await e2e.run(
            engine=engine,
            redis_url=fleet.env["REDIS_URL"],
            gateway_url=fleet.gateway_url,
            tokens=tokens,
            skus=skus,
            clients=mode.e2e_clients,
            warmup_s=mode.e2e_warmup_s,
            window_s=mode.e2e_window_s,
            drain_timeout_s=120,
            log=log,
            mail_dir=fleet.env["MAIL_DIR"],
            window=window,
        )
    if profiler:
        profiler.wait()
    placed = measured["placed_in_window"]
    measured["cpu_window_s"] = round(cpu.wall_s, 2)
    measured["cpu_cores"] = (
        {role: round(seconds / cpu.wall_s, 2) for role, seconds in cpu.seconds.items()} if cpu.wall_s else {}
    )
    # CPU the machine spent per order placed in the window, by process.
    measured["cpu_ms_per_order"] = cpu.ms_per(placed)
    measured["sql"] = window.sql.result(placed)
    rate = open_rate or (measured["orders_per_s"] or 0) / 2
    if rate > 0:
        log(f"open loop: {rate:.1f} orders/s for {mode.open_window_s:g}s")
        measured["open_loop"] = await e2e.open_loop(
            engine=engine,
            gateway_url=fleet.gateway_url,
            tokens=tokens,
            skus=skus,
            rate=rate,
            window_s=mode.open_window_s,
            drain_timeout_s=120,
            log=log,
            first_turn=measured["posts"],
        )
    return measured


#: At most this many accounts of its own for the open loop during expiry (then they take turns).
LOAD_ACCOUNTS_MAX = 20_000


async def _load_tokens(engine, settings, rate: float, mode: Mode, log) -> list[str]:
    """Customers of their own for the open loop that runs during expiry.

    The holds belong to the e2e customers (several unpaid orders each, up to the last one's
    release), so orders of theirs would be refused with 429 (MAX_UNPAID_ORDERS). These accounts
    have no hold; one per order the load can send (lead + window at ``rate``), up to
    LOAD_ACCOUNTS_MAX, after which each comes round again at most every LOAD_ACCOUNTS_MAX / rate
    seconds, far apart enough that none nears the limit."""
    needed = math.ceil(rate * (mode.hold_lead_s + mode.hold_window_s)) + 1
    count = max(100, min(needed, LOAD_ACCOUNTS_MAX))
    accounts = await create_accounts(engine, count)
    reuse_s = count / rate
    log(
        f"expiry: {count:,} customers of their own for the open loop "
        "(no holds; each comes round at most every "
        f"{reuse_s:,.0f}s; limit {settings.max_unpaid_orders} unpaid orders per customer)"
    )
    return tokens_for(settings, accounts)


async def _scenarios(
    fleet: DirectFleet,
    mode: Mode,
    args,
    log,
    results: dict,
    memory: MemoryWatch,
    scenarios: set[str],
    profile_suffix: str = "",
    open_rate: float | None = None,
) -> None:
    settings = load_settings(fleet.env)
    engine = create_engine(fleet.env["DATABASE_URL"], pool_size=5)
    tally = StatementTally().attach(engine)
    profiler = Profiler(fleet.roles, Path(args.profile), suffix=profile_suffix) if args.profile else None
    try:
        customers = max(2_000, mode.flash_buyers)
        accounts = await create_accounts(engine, customers)
        tokens = tokens_for(settings, accounts)
        async with aiohttp.ClientSession() as client:
            skus = await create_items(
                client, fleet.gateway_url, settings.admin_token, count=50, stock=1_000_000, prefix="E2E"
            )
            flash_sku = (
                await create_items(
                    client,
                    fleet.gateway_url,
                    settings.admin_token,
                    count=1,
                    stock=mode.flash_units,
                    prefix="FLASH",
                )
            )[0]
        log(f"population: {customers} customers, {len(skus)} SKUs")

        if "floor" in scenarios:
            memory.phase = "floor"
            results["floor"] = {
                "database": await asyncio.to_thread(
                    floor.database, fleet.env["DATABASE_URL"], mode.floor_s, log
                ),
                "http": await floor.http(fleet.gateway_url, fleet.roles, mode.floor_s, log),
            }

        if "e2e" in scenarios:
            memory.phase = "e2e"
            log(
                f"e2e: {mode.e2e_clients} clients, {mode.e2e_warmup_s:g}s warm-up + "
                f"{mode.e2e_window_s:g}s window"
            )
            results["e2e"] = await _e2e(
                fleet, engine, tally, mode, args, log, tokens, skus, profiler, open_rate
            )
            log(f"e2e: {json.dumps({k: v for k, v in results['e2e'].items() if k != 'messages_per_order'})}")

        if "flash" in scenarios:
            memory.phase = "flash"
            log(f"flash: {mode.flash_buyers} buyers for {mode.flash_units} units")
            results["flash"] = await flash.run(
                engine=engine,
                gateway_url=fleet.gateway_url,
                tokens=tokens[: mode.flash_buyers],
                sku=flash_sku,
                units=mode.flash_units,
                log=log,
            )
            log(f"flash: {json.dumps(results['flash'])}")

        if "expiry" in scenarios:
            memory.phase = "expiry"
            # The open-loop load the expiry is measured under: the e2e phase's open-loop rate.
            load_rate = ((results.get("e2e") or {}).get("open_loop") or {}).get("rate_per_s")
            load_tokens = await _load_tokens(engine, settings, load_rate, mode, log) if load_rate else []
            log(
                f"expiry: {mode.holds:,} holds due from {mode.hold_lead_s:g}s over {mode.hold_window_s:g}s, "
                f"with the Redis TTL peers on the same schedule, "
                + (
                    f"under an open-loop load of {load_rate:g} orders/s"
                    if load_rate
                    else "without an order load (no open-loop rate from an e2e phase in this run)"
                )
            )
            peers = RedisPeers(
                services.REDIS_SERVER, services.REDIS_DB, services.REDIS_PEER_DB, mode.background_keys
            )
            cpu = CpuMeter(fleet.roles)
            try:
                await peers.prepare(log)
                created = await expiry.create_holds(
                    engine=engine,
                    broker_url=fleet.env["BROKER_URL"],
                    queue_type=fleet.env.get("QUEUE_TYPE", ""),
                    accounts=accounts,
                    holds=mode.holds,
                    lead_s=mode.hold_lead_s,
                    window_s=mode.hold_window_s,
                    log=log,
                )
                await peers.set_keys(created["expiries"])
                cpu.start()
                if profiler:
                    profiler.start(
                        "expiry", created["first_due_in_s"] + mode.hold_window_s, roles=("worker",)
                    )
                releases = expiry.measure(
                    engine=engine,
                    holds=mode.holds,
                    skus=created["skus"],
                    end=created["end"],
                    grace_s=mode.hold_grace_s,
                    log=log,
                    others_done=peers.all_arrived,
                )
                if load_rate:
                    # From now until the last hold falls due, orders arrive on the e2e open loop's schedule.
                    load_s = round(max((created["end"] - utcnow()).total_seconds(), 1.0), 1)
                    log(
                        f"expiry: open loop at {load_rate:g} orders/s for {load_s:g}s, while the holds "
                        "fall due"
                    )
                    measured, load = await asyncio.gather(
                        releases,
                        e2e.open_loop(
                            engine=engine,
                            gateway_url=fleet.gateway_url,
                            tokens=load_tokens,
                            skus=skus,
                            rate=load_rate,
                            window_s=load_s,
                            drain_timeout_s=120,
                            log=log,
                        ),
                    )
                    load["accounts"] = len(load_tokens)
                    measured["open_loop"] = load
                else:
                    measured = await releases
                measured["cpu_cores"] = cpu.stop()
                # The window's CPU per hold; under the load, net of the orders at the e2e phase's cost each.
                measured["cpu_ms_per_hold"] = _net_of_load(
                    cpu,
                    mode.holds,
                    measured.get("open_loop"),
                    (results.get("e2e") or {}).get("cpu_ms_per_order"),
                )
                log(f"expiry: CPU ms per hold {measured['cpu_ms_per_hold']}")
                if profiler:
                    profiler.wait()
                results["redis_peer"], results["redis_peer_loaded"] = await peers.finish()
            finally:
                await peers.restore()
            memory.sample()
            measured.update(
                window_s=mode.hold_window_s,
                lead_s=mode.hold_lead_s,
                created_s=created["created_s"],
                first_due_in_s=created["first_due_in_s"],
                rate_per_s=round(mode.holds / mode.hold_window_s, 1),
            )
            results["expiry"] = measured
            if load_rate:
                log(f"expiry: open loop during expiry: {json.dumps(measured['open_loop'])}")
            for key in ("redis_peer", "redis_peer_loaded"):
                log(f"{key}: {results[key]}")
        if profiler and profiler.written:
            results["flame_graphs"] = profiler.written
            log(f"profile: {', '.join(profiler.written)}")
    finally:
        await engine.dispose()


def _net_of_load(cpu: CpuMeter, holds: int, load: dict | None, per_order: dict | None) -> dict[str, float]:
    """CPU ms per hold by role, less what the open loop's orders cost at ``per_order`` ms each."""
    orders, per_order = (load or {}).get("posts", 0), per_order or {}
    return {
        role: round(max(seconds * 1000 - orders * per_order.get(role, 0.0), 0.0) / holds, 2)
        for role, seconds in cpu.seconds.items()
    }


def _measure_fleet(
    tree: FleetTree,
    mode: Mode,
    args,
    log,
    *,
    name: str,
    workdir: Path,
    redis_url: str,
    processes: int,
    threads: int,
    scenarios: set[str],
    profile_suffix: str = "",
    open_rate: float | None = None,
    vhost: Callable[[str], AbstractContextManager[str]] = services.own_vhost,
    extra_env: dict[str, str] | None = None,
) -> dict:
    """Start ``tree``'s fleet on a database and vhost of its own, run ``scenarios`` on it, stop it.

    ``vhost`` makes the vhost and gives its BROKER_URL (default: on the machine's RabbitMQ);
    ``extra_env`` is added to the fleet's environment (``QUEUE_TYPE``, say).
    """
    results: dict = {}
    workdir.mkdir(parents=True, exist_ok=True)
    with services.dropped_database(name) as database_url, vhost(name) as broker_url:
        env = fleet_environment(
            database_url=database_url,
            broker_url=broker_url,
            redis_url=redis_url,
            workdir=workdir,
            provider=args.provider,
            ADMIN_TOKEN="bench-admin-token",
            WORKER_PROCESSES=str(processes),
            WORKER_THREADS=str(threads),
            **(extra_env or {}),
        )
        # The test launcher's defaults are for tests; the bench runs the fleet's own.
        for test_only in ("AUTH_MAX_FAILURES_PER_ACCOUNT", "AUTH_MAX_FAILURES_PER_ADDRESS"):
            env.pop(test_only, None)
        log(
            f"fleet {tree.label}: release (migrations), then {', '.join(DirectFleet.names)} each on its own; "
            f"logs in {workdir / 'logs'}"
        )
        release(tree, env, workdir / "release.log")
        fleet = DirectFleet(env=env, log_dir=workdir / "logs", tree=tree)
        fleet.start()
        log(f"fleet {tree.label}: up, gateway {fleet.gateway_url}")
        memory = MemoryWatch(fleet.roles)
        memory.start()
        try:
            asyncio.run(
                _scenarios(fleet, mode, args, log, results, memory, scenarios, profile_suffix, open_rate)
            )
        finally:
            memory.stop()
            codes = fleet.stop()
        results["worker_rss"] = {
            "peak_total_mb": round(memory.peak_total_mb, 1),
            "peak_process_mb": round(memory.peak_process_mb, 1),
            "by_phase_mb": {k: round(v, 1) for k, v in memory.phase_peaks.items()},
        }
        results["exit_codes"] = codes
        log(f"fleet {tree.label}: stopped (exit codes {codes}); worker RSS {results['worker_rss']}")
    return results


def _measure_on_cluster(
    args,
    mode: Mode,
    log,
    name: str,
    workdir: Path,
    redis_url: str,
    processes: int,
    threads: int,
    results: dict,
) -> dict:
    """The e2e and expiry phases again, on a 3-node RabbitMQ cluster (scripts/rabbitmq-cluster, started
    now and stopped after) with quorum queues, at the single node's open-loop rate."""
    services.flush_redis_db()
    open_rate = (results.get("e2e") or {}).get("open_loop", {}).get("rate_per_s")
    log("cluster: starting 3 RabbitMQ nodes (scripts/rabbitmq-cluster)")
    with cluster_session() as cluster:
        return {
            "nodes": 3,
            "queue_type": "quorum",
            **_measure_fleet(
                current_tree(),
                mode,
                args,
                log,
                name=f"{name}_cluster",
                workdir=workdir / "cluster",
                redis_url=redis_url,
                processes=processes,
                threads=threads,
                scenarios=args.only & {"e2e", "expiry"},
                profile_suffix="-cluster",
                open_rate=open_rate,
                vhost=lambda vhost_name: _cluster_vhost(cluster, vhost_name),
                extra_env={"QUEUE_TYPE": "quorum"},
            ),
        }


@contextmanager
def _cluster_vhost(cluster: RabbitmqCluster, name: str) -> Iterator[str]:
    with own_cluster_vhost(cluster, name):
        yield cluster.broker_url(name)


def run(args) -> int:
    mode = QUICK if args.quick else FULL
    if args.clients:
        mode = dataclasses.replace(mode, e2e_clients=args.clients)
    log = Progress()
    _quiet_logging()
    processes = int(os.environ.get("WORKER_PROCESSES", "2"))
    threads = int(os.environ.get("WORKER_THREADS", "8"))
    name = services.run_name()
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    machine = services.machine()
    log(f"{mode.name} run {name}; work files in {workdir}")
    results: dict = {}
    started = time.monotonic()
    current = baseline.describe_current()
    with services.own_redis_db() as redis_url, ExitStack() as stack:
        # The earlier commit's checkout and virtualenv first, so that pip is done before anything is measured.
        earlier = (
            stack.enter_context(baseline.checked_out(args.baseline, workdir / "baseline-bootstrap.log", log))
            if args.baseline
            else None
        )
        if "ceiling" in args.only:
            with services.own_vhost(f"{name}_ceiling") as broker_url:
                results["ceiling"] = ceiling.measure(
                    broker_url=broker_url,
                    redis_url=redis_url,
                    processes=processes,
                    threads=threads,
                    messages=mode.ceiling_messages,
                    workdir=workdir,
                    log=log,
                    queue_type=os.environ.get("QUEUE_TYPE", ""),
                )
            log(f"ceiling: {results['ceiling']}")
        scenarios = args.only & {"floor", "e2e", "flash", "expiry"}
        if scenarios:
            results.update(
                _measure_fleet(
                    current_tree(),
                    mode,
                    args,
                    log,
                    name=name,
                    workdir=workdir / "current",
                    redis_url=redis_url,
                    processes=processes,
                    threads=threads,
                    scenarios=scenarios,
                )
            )
        if earlier is not None:
            services.flush_redis_db()
            # The open loop at the same arrival rate as this checkout's, so its latencies compare.
            open_rate = (results.get("e2e") or {}).get("open_loop", {}).get("rate_per_s")
            measured = _measure_fleet(
                earlier,
                mode,
                args,
                log,
                name=f"{name}_base",
                workdir=workdir / earlier.label,
                redis_url=redis_url,
                processes=processes,
                threads=threads,
                scenarios={"e2e"},
                profile_suffix=f"-{earlier.label}",
                open_rate=open_rate,
            )
            results["baseline"] = {
                "rev": args.baseline,
                "commit": earlier.label,
                "measured": "after",
                **measured,
            }
        if args.cluster:
            results["cluster"] = _measure_on_cluster(
                args, mode, log, name, workdir, redis_url, processes, threads, results
            )
    duration = time.monotonic() - started
    summary = targets(results)
    document = {
        "mode": mode.name,
        "duration_s": round(duration, 1),
        "machine": machine,
        "current": current,
        "settings": {
            "worker_processes": processes,
            "worker_threads": threads,
            "psp_provider": args.provider,
            **mode.__dict__,
        },
        **summary["flat"],
        "targets": summary["targets"],
        "broken": summary["broken"],
        "details": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = [RESULTS / "latest.json"]
    if args.only >= SCENARIOS:
        paths.append(RESULTS / f"{mode.name}.json")
    if earlier is not None:
        paths.append(RESULTS / f"{mode.name}-baseline-{earlier.label}.json")
    for path in paths:
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(render_table(document))
    for section in (render_comparison(document), render_cluster_comparison(document), render_floor(document)):
        if section:
            print()
            print(section)
    log(f"done in {duration:.0f}s; wrote {', '.join(str(path) for path in paths)}")
    if summary["broken"]:
        print(f"\nBROKEN RUN: {'; '.join(summary['broken'])}", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


SCENARIOS = {"ceiling", "floor", "e2e", "flash", "expiry"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the short run (at most 4 minutes)")
    parser.add_argument(
        "--only",
        default=",".join(sorted(SCENARIOS)),
        help="comma-separated scenarios to run: ceiling, e2e, flash, expiry (default: all)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (fleet logs, mail)")
    parser.add_argument(
        "--clients", type=int, metavar="N", help="closed-loop clients of the e2e phase (default: the mode's)"
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure the e2e phase on the fleet of commit REV (its own worktree and "
        "virtualenv), after this checkout's, and print both side by side",
    )
    parser.add_argument(
        "--provider",
        choices=PROVIDERS,
        default="sandbox",
        help="the payment provider of the measured fleets: the sandbox's own API, or Stripe through its "
        "SDK and the sandbox's Stripe face (default: sandbox)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also measure the e2e and expiry phases on a 3-node RabbitMQ cluster with quorum queues "
        "(scripts/rabbitmq-cluster), after the single classic node, and print both side by side",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        nargs="?",
        const=str(RESULTS),
        help="py-spy flame graphs (SVG) of the gateway and a worker process during the e2e window "
        "(and of a worker during expiry) into DIR (default bench/results)",
    )
    args = parser.parse_args(argv)
    args.only = set(args.only.split(","))
    unknown = args.only - SCENARIOS
    if unknown:
        parser.error(f"--only: unknown scenario {', '.join(sorted(unknown))}")
    if args.baseline:
        args.only.add("e2e")  # the side by side needs this checkout's e2e figures too
    # A SIGTERM (timeout, a killed job) unwinds like Ctrl-C: the fleet is stopped and the run's
    # database and vhost are removed, instead of a fleet left running on its own.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
