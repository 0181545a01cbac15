"""Switching a running deployment from classic to quorum queues, as docs/operations.md tells it:
stop the workers, restart gateway and scheduler with QUEUE_TYPE=quorum (the outbox keeps what
they cannot publish), `orders-admin queues migrate --to quorum`, start the workers with
QUEUE_TYPE=quorum. Orders taken before and during the switch all end as they should, among them
one whose expiry was a delayed message waiting in ``expire.DQ`` while the queues moved."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from ops.queue_migration import fleet_queue_names
from tests.support import isolation
from tests.support.api import Api
from tests.support.fleet import ROOT, answers_ok, fleet_environment
from tests.support.isolation import own_database, own_vhost
from tests.support.polling import eventually_sync
from tests.support.processes import signal_group, start
from tests.support.queues import peek, queue_types

HOLD_SECONDS = 30


class Processes:
    """Procfile.dev processes started and stopped one by one, each logging to a file of its own."""

    def __init__(self, workdir: Path):
        self.workdir, self.running = workdir, {}

    def start(self, name: str, env: dict[str, str]) -> None:
        self.running[name] = start(name, env, self.workdir / f"{name}.log")

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


UNPAID = {"method": "token", "token": "pm_card_no_response"}


@pytest.fixture
def deployment(run_name, tmp_path):
    """(vhost, classic environment, processes) of a deployment with a database and vhost of its own."""
    name = f"{run_name}_switch"
    with own_database(name) as database_url, own_vhost(name) as broker_url:
        classic = fleet_environment(
            database_url=database_url,
            broker_url=broker_url,
            redis_url=isolation.REDIS_URL,
            workdir=tmp_path,
            ADMIN_TOKEN="switch-admin-token",
            HOLD_SECONDS=str(HOLD_SECONDS),
            OUTBOX_RELAY_AFTER_SECONDS="1",
        )
        processes = Processes(tmp_path)
        try:
            yield name, classic, processes
        finally:
            processes.stop_all()


async def test_a_deployment_switches_to_quorum_queues_and_loses_nothing(deployment):
    name, classic, processes = deployment
    quorum = {**classic, "QUEUE_TYPE": "quorum"}
    gateway = f"http://127.0.0.1:{classic['PORT']}"
    for process in ("psp", "mail", "web", "worker", "scheduler"):
        processes.start(process, classic)
    eventually_sync(lambda: answers_ok(f"{gateway}/healthz"), timeout=30, what="the gateway")
    # No keep-alive: the gateway restarts in the middle, and a pooled connection to the old one
    # would fail the first request to the new one.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as client:
        api = Api(client, gateway, classic["ADMIN_TOKEN"])
        token, sku = await api.customer(), await api.item(stock=10)

        # Unpaid: its hold's expiry waits in expire.DQ, held by the worker until it stops.
        _, unpaid, _ = await api.order(token, {sku: 1}, payment=UNPAID)
        await api.final_order(token, unpaid["id"], {"AWAITING_PAYMENT"})
        processes.stop("worker")
        eventually_sync(lambda: len(peek(name, "expire.DQ")) == 1, what="the expiry back in expire.DQ")

        # Taken while no worker runs: its reserve waits in the classic queue.
        _, before, _ = await api.order(token, {sku: 1})
        eventually_sync(lambda: len(peek(name, "reserve")) == 1, what="the reserve message queued")

        # Gateway and scheduler restarted with the new type: orders are still taken, and
        # the outbox keeps their messages while the queues are classic.
        processes.stop("web")
        processes.stop("scheduler")
        processes.start("web", quorum)
        processes.start("scheduler", quorum)
        eventually_sync(lambda: answers_ok(f"{gateway}/healthz"), timeout=30, what="the gateway")
        status, during, _ = await api.order(token, {sku: 1})
        assert status == 202
        eventually_sync(
            lambda: "broker.queue_type_mismatch" in processes.log("web"), what="the gateway's refusal"
        )

        migrated = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ops", "queues", "migrate", "--to", "quorum"],
            cwd=ROOT,
            env={**quorum, "LOG_LEVEL": "WARNING"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert "reserve: classic -> quorum" in migrated.stdout
        assert "expire.DQ: classic -> quorum, 1 message(s) moved" in migrated.stdout
        types = queue_types(name)
        assert {types[q] for q in fleet_queue_names()} == {"quorum"}
        assert not [q for q in types if q.endswith(".migrating")]

        processes.start("worker", quorum)
        worker_started = datetime.now(UTC)
        placed = [await api.final_order(token, o["id"], {"PLACED"}) for o in (before, during)]
        expired = await api.final_order(token, unpaid["id"], {"CANCELLED"}, timeout=HOLD_SECONDS + 30)
        status, ready, _ = await api.call("GET", "/readyz")

    assert [order["payment"]["status"] for order in placed] == ["SUCCEEDED", "SUCCEEDED"]
    assert expired["reason"] == "payment_timeout"
    # Ended by its own delayed message, moved with the queues: the sweep, the other way an unpaid
    # order ends, waits until a hold is 30 s overdue and runs every RECONCILE_EVERY_SECONDS (300).
    due = max(parse(expired["hold_expires_at"]), worker_started)
    assert (parse(expired["history"][-1]["at"]) - due).total_seconds() < 10
    assert status == 200 and ready["checks"]["broker"] == "ok"
