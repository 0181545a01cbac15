"""A real Prometheus (Debian's ``prometheus`` binary) for tests: a free port, a temporary
configuration and data folder, and its HTTP API."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.fleet import answers_ok, free_port
from tests.support.monitoring import ALERTS
from tests.support.polling import eventually_sync

#: Every `for:` of the rules, in the test's copy: the rules' own delays are minutes.
TEST_FOR = "2s"


def rules_with_short_delays(folder: Path) -> Path:
    """A copy of alerts.yml whose alerts wait ``TEST_FOR`` before firing; its path."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = TEST_FOR
    path = folder / "alerts.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


class Prometheus:
    """``prometheus`` scraping ``targets`` (``{job: ["host:port", ...]}``) every second, with the
    rules of ``rules`` evaluated every second. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, folder: Path, targets: dict[str, list[str]], rules: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": addresses}]}
                for job, addresses in targets.items()
            ],
        }
        self.config = folder / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = folder / "prometheus.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Prometheus:
        """Run it and wait until it answers ready."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run scripts/monitoring-tools")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (Prometheus writes to it until stopped)
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        eventually_sync(self._ready, timeout=timeout, interval=0.2, what=f"Prometheus on {self.url}")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"prometheus exited; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}"
            )
        return answers_ok(f"{self.url}/-/ready")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within 20 s."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        self._log.close()

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of an answer of the HTTP API (``/api/v1/...``)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def targets_up(self) -> dict[str, bool]:
        """``{job: every target of it up}`` as Prometheus last scraped them."""
        jobs: dict[str, bool] = {}
        for target in self.api("targets")["activeTargets"]:
            job = target["labels"]["job"]
            jobs[job] = jobs.get(job, True) and target["health"] == "up"
        return jobs

    def alert_states(self) -> dict[str, str]:
        """``{alert name: "pending" or "firing"}`` of the alerts active now."""
        return {alert["labels"]["alertname"]: alert["state"] for alert in self.api("alerts")["alerts"]}

    def last_evaluations(self) -> dict[str, str]:
        """``{rule group: when it was last evaluated}``; fails if any rule's evaluation failed."""
        groups = self.api("rules")["groups"]
        for group in groups:
            for rule in group["rules"]:
                assert rule["health"] == "ok", rule
        return {group["name"]: group["lastEvaluation"] for group in groups}

    def wait_for_evaluations(self, rounds: int = 2, timeout: float = 30.0) -> None:
        """Wait until every rule group has been evaluated ``rounds`` more times from now."""
        for _ in range(rounds):
            before = self.last_evaluations()
            eventually_sync(
                lambda before=before: all(
                    after != before.get(name) for name, after in self.last_evaluations().items()
                ),
                timeout=timeout,
                interval=0.2,
                what="Prometheus to evaluate every rule group again",
            )

    def metric_names(self, selector: str) -> set[str]:
        """The metric names of the series matching ``selector`` that Prometheus holds."""
        return set(self.api("label/__name__/values", **{"match[]": selector}))
