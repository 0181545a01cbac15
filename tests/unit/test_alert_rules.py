"""The alerting rules load in Prometheus and behave as their unit tests say (promtool).

promtool comes with Debian's ``prometheus`` package, which ``scripts/monitoring-tools`` installs
(``scripts/test`` runs it first).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus"
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in the rules' folder (their paths are relative to it)."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: run scripts/monitoring-tools", pytrace=False)
    return subprocess.run(
        [binary, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120, check=False
    )


def assert_succeeds(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}{result.stderr}"


def test_promtool_accepts_the_rules():
    assert_succeeds(promtool("check", "rules", "alerts.yml"))


def test_the_rules_pass_their_unit_tests():
    assert_succeeds(promtool("test", "rules", "alerts_test.yml"))


def test_the_example_configuration_is_valid_and_loads_the_rules():
    result = promtool("check", "config", "prometheus.yml")
    assert_succeeds(result)
    assert "1 rule files found" in result.stdout


def alerts() -> list[dict]:
    groups = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_has_a_delay_a_severity_and_the_annotations_an_operator_needs():
    for rule in alerts():
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert set(rule["annotations"]) >= {"summary", "description", "runbook"}, rule["alert"]
        assert "$value" in rule["annotations"]["description"], rule["alert"]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown``: lower case, spaces to dashes."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add("".join(c for c in title.replace(" ", "-") if c.isalnum() or c in "-_"))
    return anchors


def test_every_runbook_is_a_section_of_the_operations_guide():
    anchors = heading_anchors(OPERATIONS.read_text())
    for rule in alerts():
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in docs/operations.md"


def test_each_alert_has_a_firing_and_a_quiet_case_in_the_unit_tests():
    tests = yaml.safe_load((RULES_DIR / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for name in (rule["alert"] for rule in alerts()):
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == name}
        assert outcomes == {True, False}, f"{name}: {outcomes or 'no case'}"
