"""Every PromQL expression of the alerting rules and of the Grafana dashboard names only metrics
the fleet exports (or RabbitMQ's rabbitmq_prometheus plugin, or Prometheus itself for ``up``)."""

from __future__ import annotations

import json

import pytest

from tests.support.monitoring import (
    DASHBOARD,
    PROMETHEUS_OWN,
    alert_expressions,
    dashboard_expressions,
    defined_metrics,
    fleet_metric_names,
    promql_metric_names,
    rabbitmq_metric_names,
    series_names,
    unserved_metric_names,
)

KNOWN = fleet_metric_names() | rabbitmq_metric_names() | PROMETHEUS_OWN
EXPRESSIONS = {
    **{f"alerts.yml {name}": expr for name, expr in alert_expressions().items()},
    **{f"orders-fleet.json {name}": expr for name, expr in dashboard_expressions().items()},
}


def test_the_expressions_are_found():
    assert len(alert_expressions()) >= 13
    assert len(dashboard_expressions()) >= 25


@pytest.mark.parametrize("where", sorted(EXPRESSIONS))
def test_an_expression_names_only_exported_metrics(where):
    names = promql_metric_names(EXPRESSIONS[where])

    assert names, f"{where}: no metric found in {EXPRESSIONS[where]!r}"
    assert names <= KNOWN, f"{where}: not exported by the fleet nor RabbitMQ: {sorted(names - KNOWN)}"


def test_the_fleet_metrics_are_read_from_the_code_that_defines_them():
    names = fleet_metric_names()

    # The gateway's, the steps' and dramatiq's, with the samples prometheus_client makes of them.
    assert {"orders_outbox_unsent", "orders_holds_overdue_seconds", "orders_dead_letters"} <= names
    assert {"orders_notifications_failed_total", "orders_status_changes_total"} <= names
    assert {"dramatiq_message_errors_total", "dramatiq_message_duration_milliseconds_bucket"} <= names
    assert "orders_http_request_duration_seconds_count" in names
    # The scheduler's sweep counter is defined, but no process serves it.
    assert "orders_sweep_requeued_total" in unserved_metric_names()
    assert "orders_sweep_requeued_total" not in names


def test_the_monitoring_files_leave_out_what_no_process_serves():
    used = set().union(*(promql_metric_names(expr) for expr in EXPRESSIONS.values()))

    assert not used & unserved_metric_names()


def test_the_dashboard_covers_what_an_operator_watches():
    used = set().union(*(promql_metric_names(expr) for expr in dashboard_expressions().values()))

    assert {
        "orders_http_request_duration_seconds_count",  # orders accepted
        "orders_status_changes_total",  # placed, cancelled...
        "dramatiq_message_duration_milliseconds_bucket",
        "dramatiq_message_errors_total",
        "orders_outbox_unsent",
        "orders_dead_letters",
        "orders_holds_pending_units",
        "orders_notifications_sent_total",
        "orders_reconciliation_drifting_skus",
        "orders_webhook_mismatches_total",
        "up",
    } <= used


def test_the_dashboard_takes_its_data_source_as_an_import_input():
    dashboard = json.loads(DASHBOARD.read_text())

    assert [entry["name"] for entry in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ('sum by (queue) (orders_dead_letters{queue=~"a.*"}) > 0', {"orders_dead_letters"}),
        ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
        ("(a unless a offset 1h) and on (job, instance) (up offset 1h)", {"a", "up"}),
        ("time() - max(t > 0) > 9e2", {"t"}),
        ("sum(rate(e[5m])) * 60 > 0 unless sum(rate(s[5m])) > 0", {"e", "s"}),
        ("max(x) without (pid) / ignoring (le) group_left y", {"x", "y"}),
    ],
)
def test_metric_names_are_told_from_functions_labels_and_keywords(expression, names):
    assert promql_metric_names(expression) == names


def test_metric_definitions_are_read_with_their_samples():
    source = 'A = Counter("c_total", "x", ["l"])\nB = prom.Histogram("h", "x")\nC = Gauge(name, "x")\n'

    assert defined_metrics(source) == {"c_total": "Counter", "h": "Histogram"}
    assert series_names("c_total", "Counter") == {"c_total", "c_created"}
    assert series_names("h", "Histogram") == {"h_bucket", "h_sum", "h_count", "h_created"}
