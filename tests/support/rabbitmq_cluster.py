"""The 3-node RabbitMQ cluster of scripts/rabbitmq-cluster, driven from tests and benchmarks.

The script does the work (start, stop, kill, revive); this module runs it, knows where each node
answers, and talks to the cluster's management API for vhosts and queues. ``cluster_session()``
gives a test session or a benchmark the cluster for its whole length, one user at a time.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.fleet import ROOT
from tests.support.report import report

SCRIPT = ROOT / "scripts" / "rabbitmq-cluster"
NODES = (1, 2, 3)
HOST = "127.0.0.1"
USER = PASSWORD = "guest"
#: How long one script command may take (its own waits have a deadline of 120 s each).
COMMAND_TIMEOUT = 300
#: How long to wait for another test run or benchmark to finish with the cluster: with the start
#: after it, well inside pytest's 300 s timeout of the test whose setup starts the cluster.
SESSION_LOCK_TIMEOUT = 180


class ClusterError(RuntimeError):
    """A script command failed; the message is what the script said."""


@dataclass(frozen=True)
class RabbitmqCluster:
    """Where the cluster's nodes live and answer (the script's defaults, or its environment)."""

    base_dir: Path
    first_port: int
    name_prefix: str

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> RabbitmqCluster:
        """The cluster the script starts with ``environ``'s RABBITMQ_CLUSTER_* variables."""
        env = os.environ if environ is None else environ
        return cls(
            base_dir=Path(env.get("RABBITMQ_CLUSTER_DIR", "/tmp/fleet-rabbitmq-cluster")),
            first_port=int(env.get("RABBITMQ_CLUSTER_PORT", "5701")),
            name_prefix=env.get("RABBITMQ_CLUSTER_NAME", "fleet"),
        )

    # ------------------------------------------------------------ names and addresses

    def node_name(self, node: int) -> str:
        """The Erlang node name of node ``node`` (1..3), e.g. ``fleet-1@localhost``."""
        return f"{self.name_prefix}-{node}@localhost"

    @property
    def node_names(self) -> list[str]:
        """The three node names, in node order."""
        return [self.node_name(n) for n in NODES]

    def node_of(self, name: str) -> int:
        """The number of the node called ``name``."""
        return self.node_names.index(name) + 1

    def amqp_port(self, node: int) -> int:
        """The AMQP port of node ``node``."""
        return self.first_port + node - 1

    def management_port(self, node: int) -> int:
        """The management API port of node ``node``."""
        return self.amqp_port(node) + 10000

    def amqp_url(self, node: int, vhost: str = "/") -> str:
        """An AMQP URL reaching ``vhost`` through node ``node`` only."""
        return f"amqp://{USER}:{PASSWORD}@{HOST}:{self.amqp_port(node)}/{urllib.parse.quote(vhost, safe='')}"

    def broker_url(self, vhost: str = "/") -> str:
        """The BROKER_URL listing the three nodes separated by ``;`` (as dramatiq reads it)."""
        return ";".join(self.amqp_url(n, vhost) for n in NODES)

    # ------------------------------------------------------------ the script

    def script_env(self) -> dict[str, str]:
        """The environment that makes the script drive this cluster."""
        return {
            **os.environ,
            "RABBITMQ_CLUSTER_DIR": str(self.base_dir),
            "RABBITMQ_CLUSTER_PORT": str(self.first_port),
            "RABBITMQ_CLUSTER_NAME": self.name_prefix,
        }

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run ``scripts/rabbitmq-cluster args...``; its standard output, or ClusterError with its words."""
        try:
            done = subprocess.run(
                [str(SCRIPT), *args],
                env=self.script_env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            command = " ".join(args)
            raise ClusterError(f"scripts/rabbitmq-cluster {command}: no answer within {timeout}s") from exc
        if done.returncode != 0:
            said = "\n".join(part for part in (done.stdout.strip(), done.stderr.strip()) if part)
            raise ClusterError(
                f"scripts/rabbitmq-cluster {' '.join(args)} failed (exit {done.returncode}):\n{said}"
            )
        return done.stdout

    def _timed(self, what: str, *args: str) -> float:
        started = time.monotonic()
        self.run(*args)
        seconds = time.monotonic() - started
        report(f"rabbitmq cluster: {what} took {seconds:.1f}s")
        return seconds

    def start(self) -> float:
        """Start the three nodes and wait until they run clustered; the seconds it took."""
        return self._timed("start", "start")

    def stop(self) -> float:
        """Stop every node and remove the cluster's directories; the seconds it took."""
        return self._timed("stop", "stop")

    def kill(self, node: int) -> float:
        """SIGKILL node ``node``'s Erlang VM; the seconds it took."""
        return self._timed(f"kill {node}", "kill", str(node))

    def revive(self, node: int) -> float:
        """Start node ``node`` again and wait until it rejoined and answers; the seconds it took."""
        return self._timed(f"revive {node}", "revive", str(node))

    def all_answer(self) -> bool:
        """True when every node answers AMQP and management (``status`` exits 0)."""
        try:
            self.run("status", timeout=60)
        except ClusterError:
            return False
        return True

    def leader_of_most_queues(self, vhost: str | None = None) -> int:
        """The number of the node that leads the most quorum queues (of ``vhost``, or of all)."""
        return int(self.run("leader-of-most-queues", *([vhost] if vhost is not None else [])).strip())

    def ctl(self, node: int, *args: str) -> str:
        """``rabbitmqctl args...`` against node ``node``, with the cluster's cookie."""
        return self.run("ctl", str(node), *args, timeout=60)

    def running_nodes(self, node: int = 1) -> list[str]:
        """The running nodes ``rabbitmqctl cluster_status`` on node ``node`` lists, sorted."""
        status = json.loads(self.ctl(node, "cluster_status", "--formatter", "json"))
        return sorted(status["running_nodes"])

    def ensure_running(self) -> None:
        """Start the cluster when it is gone; revive the nodes that do not answer."""
        if self.all_answer():
            return
        if not (self.base_dir / "node-1" / "mnesia").is_dir():
            self.start()
            return
        for node in NODES:
            if not self.answers_amqp(node):
                self.revive(node)

    # ------------------------------------------------------------ probes

    def answers_amqp(self, node: int) -> bool:
        """True when something accepts a TCP connection on node ``node``'s AMQP port."""
        try:
            with socket.create_connection((HOST, self.amqp_port(node)), timeout=2):
                return True
        except OSError:
            return False

    def vm_pids(self) -> list[int]:
        """Pids of this cluster's Erlang VMs, found by the marker the script puts on their command line."""
        marker = f"-fleet_rabbitmq_cluster_node\0{self.base_dir}/node-".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in command:
                pids.append(int(entry.name))
        return pids

    # ------------------------------------------------------------ management API

    def management(
        self, method: str, path: str, body: dict | None = None, *, node: int | None = None
    ) -> object:
        """Call the management API of node ``node``, or of the first node that answers."""
        nodes = [node] if node is not None else list(NODES)
        last: Exception | None = None
        for candidate in nodes:
            request = urllib.request.Request(
                f"http://{HOST}:{self.management_port(candidate)}{path}",
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={
                    "content-type": "application/json",
                    "authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    payload = response.read()
                return json.loads(payload) if payload else None
            except urllib.error.HTTPError:
                raise
            except OSError as exc:  # this node is down: ask the next one
                last = exc
        raise ClusterError(f"no management API answers {method} {path}: {last}")

    def create_vhost(self, name: str) -> str:
        """Create vhost ``name`` on the cluster with full rights for guest; its BROKER_URL."""
        quoted = urllib.parse.quote(name, safe="")
        self.management("PUT", f"/api/vhosts/{quoted}", {})
        self.management(
            "PUT", f"/api/permissions/{quoted}/{USER}", {"configure": ".*", "write": ".*", "read": ".*"}
        )
        return self.broker_url(name)

    def delete_vhost(self, name: str) -> None:
        """Remove vhost ``name`` with its queues (nothing to do when it or the cluster is gone)."""
        try:
            self.management("DELETE", f"/api/vhosts/{urllib.parse.quote(name, safe='')}")
        except (urllib.error.HTTPError, ClusterError):
            pass

    def queue(self, vhost: str, name: str, *, node: int | None = None) -> dict:
        """The management API's view of queue ``name`` (type, leader, members, online...)."""
        path = f"/api/queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(name, safe='')}"
        answer = self.management("GET", path, node=node)
        assert isinstance(answer, dict)
        return answer


@contextmanager
def own_cluster_vhost(cluster: RabbitmqCluster, name: str) -> Iterator[str]:
    """A vhost called ``name`` on the cluster for the block; yields its BROKER_URL."""
    url = cluster.create_vhost(name)
    try:
        yield url
    finally:
        cluster.delete_vhost(name)


def _session_lock_path(cluster: RabbitmqCluster) -> Path:
    directory = Path("/run/lock") if os.access("/run/lock", os.W_OK) else Path("/tmp")
    return directory / f"rabbitmq-cluster{str(cluster.base_dir).replace('/', '_')}.session.lock"


@contextmanager
def cluster_session(
    cluster: RabbitmqCluster | None = None, *, lock_timeout: float = SESSION_LOCK_TIMEOUT
) -> Iterator[RabbitmqCluster]:
    """The cluster started for the block and stopped after it, with no other session using it meanwhile.

    Two test runs (or a test run and a benchmark) would otherwise stop the cluster under each other;
    the second waits for the first, then fails with a message after ``lock_timeout`` seconds.
    """
    cluster = cluster or RabbitmqCluster.from_environment()
    path = _session_lock_path(cluster)
    with open(path, "w") as lock:
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"another test run or benchmark has used the RabbitMQ cluster in {cluster.base_dir} "
                        f"for more than {lock_timeout}s (it holds {path})"
                    ) from exc
                time.sleep(1)  # another session holds the cluster: check its lock again
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
