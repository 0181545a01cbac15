"""What the monitoring files ask of the fleet: the metric names their PromQL expressions use, and the
names the fleet's code (and RabbitMQ's plugin) export.

The exported names are read from the code that defines them (every ``Counter``, ``Gauge``,
``Histogram`` and ``Summary`` of the modules that a served process loads, and dramatiq's Prometheus
middleware), so a metric renamed in the code and not in the rules or the dashboard is caught
without running anything; tests/e2e/test_alerts_fire.py checks these names against a real scrape.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import dramatiq.middleware.prometheus
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "orders-fleet.json"
RABBITMQ_NAMES = ROOT / "monitoring" / "prometheus" / "rabbitmq_metric_names.txt"

#: The packages whose metrics the gateway (its registry) and the workers (every worker process's)
#: serve. The scheduler serves none.
SERVED_PACKAGES = ("gateway", "actors", "workers", "messaging", "models", "providers")
#: Modules that define metrics no served process loads: the sweep runs in the scheduler and in
#: `orders-admin redrive`, so its counter is never scraped.
NOT_SERVED = {"messaging/sweep.py"}
#: Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up"}

_KINDS = {"Counter", "Gauge", "Histogram", "Summary"}
_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("_sum", "_count", "_created"),
}


def defined_metrics(source: str) -> dict[str, str]:
    """``{name: kind}`` of every metric the Python ``source`` defines with a literal name."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        kind = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        first = node.args[0]
        if kind in _KINDS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found[first.value] = kind
    return found


def series_names(name: str, kind: str) -> set[str]:
    """The sample names prometheus_client exposes for a metric (a counter drops, then adds, ``_total``)."""
    base = name.removesuffix("_total") if kind == "Counter" else name
    return {base + suffix for suffix in _SUFFIXES[kind]}


def fleet_modules(served: bool = True) -> Iterator[Path]:
    """The Python files of the served packages (or only the ones no served process loads)."""
    for package in SERVED_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if (path.relative_to(ROOT).as_posix() not in NOT_SERVED) == served:
                yield path


def names_defined_in(paths: Iterable[Path], extra_sources: Iterable[str] = ()) -> set[str]:
    """The sample names of the metrics defined in ``paths`` and in ``extra_sources``."""
    names: set[str] = set()
    for source in [*(path.read_text() for path in paths), *extra_sources]:
        for name, kind in defined_metrics(source).items():
            names |= series_names(name, kind)
    return names


def fleet_metric_names() -> set[str]:
    """Every sample name the fleet's gateways and workers can expose."""
    return names_defined_in(fleet_modules(), [inspect.getsource(dramatiq.middleware.prometheus)])


def unserved_metric_names() -> set[str]:
    """Sample names of metrics defined in modules no served process loads."""
    return names_defined_in(fleet_modules(served=False))


def rabbitmq_metric_names() -> set[str]:
    """The names RabbitMQ's rabbitmq_prometheus plugin serves (families, with their sample suffixes)."""
    families = {
        line.strip()
        for line in RABBITMQ_NAMES.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    return families | {family + suffix for family in families for suffix in ("_sum", "_count", "_bucket")}


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z$_]+")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "inf", "nan",
}  # fmt: skip


def promql_metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and label names aside)."""
    text = _STRING.sub(" ", expression)
    for pattern in (_MATCHERS, _RANGE, _LABEL_LIST, _OFFSET, _NUMBER):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if text[match.end() :].lstrip().startswith("(") or word.lower() in _KEYWORDS:
            continue  # a function or aggregation, or a keyword
        names.add(word)
    return names


def alert_expressions() -> dict[str, str]:
    """``{alert name: expression}`` of alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    """``{"panel title / refId": expression}`` of every query of the Grafana dashboard."""

    def panels(items: list[dict]) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
    }
