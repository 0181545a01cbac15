"""A real Prometheus scrapes a running fleet with the alerting rules loaded, and an alert fires
when its condition comes true: the mail server stops, so notifications fail.

The fleet is one of this module's own (its own database, vhost and mail server), as stopping
the mail server of the session's fleet would disturb the other end-to-end tests. The rules are
a copy of monitoring/prometheus/alerts.yml with every `for:` shortened to seconds.
"""

from __future__ import annotations

import aiohttp
import pytest
import pytest_asyncio

from tests.support import isolation
from tests.support.api import Api
from tests.support.fleet import Fleet, fleet_environment
from tests.support.isolation import own_database, own_vhost
from tests.support.monitoring import (
    alert_expressions,
    dashboard_expressions,
    fleet_metric_names,
    promql_metric_names,
)
from tests.support.polling import eventually_sync
from tests.support.prometheus import Prometheus, rules_with_short_delays
from tests.support.smtp import SmtpServer

FLEET_JOBS = '{job=~"orders-gateway|orders-worker"}'


@pytest.fixture(scope="module")
def mail_server():
    """The mail server of this module's fleet; a test stops it."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def watched_fleet(run_name, tmp_path_factory, mail_server):
    """A fleet of this module's own, and a Prometheus scraping its gateway and worker endpoints."""
    workdir = tmp_path_factory.mktemp("alerts")
    name = f"{run_name}_alerts"
    with own_database(name) as database_url, own_vhost(name) as broker_url:
        env = fleet_environment(
            database_url=database_url,
            broker_url=broker_url,
            redis_url=isolation.REDIS_URL,
            workdir=workdir,
            ADMIN_TOKEN="alerts-admin-token",
            SMTP_URL=mail_server.url,
        )
        fleet = Fleet(env=env, log_path=workdir / "fleet.log")
        fleet.start()
        prometheus = Prometheus(
            workdir,
            {
                "orders-gateway": [f"127.0.0.1:{env['PORT']}"],
                "orders-worker": [f"127.0.0.1:{env['dramatiq_prom_port']}"],
            },
            rules_with_short_delays(workdir),
        )
        try:
            prometheus.start()
            yield fleet, prometheus
        finally:
            prometheus.stop()
            fleet.stop()
        print(f"\nfleet log: {fleet.log_path}; prometheus log: {prometheus.log_path}")


@pytest_asyncio.fixture
async def api(watched_fleet):
    fleet, _ = watched_fleet
    async with aiohttp.ClientSession() as client:
        yield Api(client, fleet.gateway_url, fleet.env["ADMIN_TOKEN"])


def scraping(prometheus: Prometheus) -> None:
    """Wait until both fleet jobs are up and the rules have been evaluated on their data since."""
    eventually_sync(
        lambda: prometheus.targets_up() == {"orders-gateway": True, "orders-worker": True},
        timeout=30,
        interval=0.2,
        what="Prometheus to scrape the gateway and the workers",
    )
    prometheus.wait_for_evaluations()


async def test_notifications_failing_fires_when_the_mail_server_stops(api, watched_fleet, mail_server):
    _, prometheus = watched_fleet
    token, sku = await api.customer(), await api.item(stock=5)
    _, first, _ = await api.order(token, {sku: 1})
    await api.final_order(token, first["id"], {"PLACED"})
    eventually_sync(lambda: mail_server.recorder.for_order(first["id"]), timeout=30, what="the first email")
    scraping(prometheus)
    assert "NotificationsFailing" not in prometheus.alert_states()

    mail_server.stop()
    _, second, _ = await api.order(token, {sku: 1})
    await api.final_order(token, second["id"], {"PLACED"})

    fired = eventually_sync(
        lambda: prometheus.alert_states().get("NotificationsFailing") == "firing",
        timeout=90,
        interval=0.5,
        what="NotificationsFailing to fire",
    )
    assert fired
    assert prometheus.api("query", query='sum(dramatiq_message_errors_total{actor_name="notify"})')["result"]


async def test_the_names_in_the_rules_and_dashboard_are_those_a_scrape_of_the_fleet_shows(api, watched_fleet):
    _, prometheus = watched_fleet
    token, sku = await api.customer(), await api.item(stock=1)
    _, order, _ = await api.order(token, {sku: 1})
    await api.final_order(token, order["id"], {"PLACED"})
    scraping(prometheus)

    scraped = {
        name for name in prometheus.metric_names(FLEET_JOBS) if name.startswith(("orders_", "dramatiq_"))
    }
    defined = fleet_metric_names()
    # What the code is read to define is what the fleet serves: nothing scraped is unknown ...
    assert scraped <= defined, sorted(scraped - defined)
    # ... and every gateway gauge the rules and the dashboard use (always served) is there.
    used = set().union(
        *(
            promql_metric_names(expr)
            for expr in [*alert_expressions().values(), *dashboard_expressions().values()]
        )
    )
    always_served = {
        "orders_by_status",
        "orders_outbox_unsent",
        "orders_outbox_oldest_unsent_seconds",
        "orders_holds_pending_units",
        "orders_holds_overdue",
        "orders_holds_overdue_seconds",
        "orders_reconciliation_drifting_skus",
        "orders_reconciliation_last_run_timestamp_seconds",
        "orders_dead_letters",
        "orders_http_request_duration_seconds_bucket",
        "orders_http_request_duration_seconds_count",
        "orders_status_changes_total",
        "dramatiq_messages_total",
        "dramatiq_message_duration_milliseconds_bucket",
        "orders_notifications_sent_total",
    }
    assert always_served <= used
    assert always_served <= scraped, sorted(always_served - scraped)
