"""The bench's floor: the lower bound of CPU per placed order from the parts' measured costs."""

from __future__ import annotations

import pytest

from bench.floor import lower_bound
from bench.report import render_floor, targets

PARTS = {
    "message": {"publish": {"publisher": 0.2, "rabbitmq": 0.4}, "consume": {"worker": 0.3, "rabbitmq": 0.1}},
    "database": {
        "round_trips_per_s": 6000,
        "client": 0.15,
        "mariadb": 0.1,
        "driver_alone": {"round_trips_per_s": 9000, "client": 0.05, "mariadb": 0.1},
    },
    "http": {"requests_per_s": 10000, "web": 0.1},
}


def test_the_lower_bound_adds_messages_events_round_trips_and_requests():
    bound = lower_bound(
        PARTS, messages_per_order=5, events_per_order=1, statements_per_order=15, commits_per_order=6
    )

    assert bound["messages"] == pytest.approx(5 * 1.0)  # published and handled
    assert bound["events"] == pytest.approx(0.6)  # published only
    assert bound["round_trips"] == pytest.approx(21 * 0.25)
    assert bound["requests"] == pytest.approx(2 * 0.1)
    assert bound["total"] == pytest.approx(5 + 0.6 + 5.25 + 0.2)


def test_the_report_gives_the_bound_at_the_target_and_at_the_measured_statements():
    results = {
        "ceiling": {"msgs_per_s": 6000, "cpu_ms_per_message": PARTS["message"]},
        "floor": {"database": PARTS["database"], "http": PARTS["http"]},
        "e2e": {
            "worker_messages_per_order": 5,
            "events_per_order": 1,
            "orders_per_s": 30,
            "placed_in_window": 300,
            "cpu_ms_per_order": {"web": 10, "worker": 30},
            "sql": {"per_order": {"statements": 30.0, "commit": 7.0}},
        },
    }

    floor = targets(results)["flat"]["floor"]

    assert floor["at_target"]["total"] == pytest.approx(5 + 0.6 + 21 * 0.25 + 0.2)
    assert floor["at_measured"]["total"] == pytest.approx(5 + 0.6 + 37 * 0.25 + 0.2)
    table = render_floor({"floor": floor, "cpu_ms_per_order_fleet_and_servers": 40.0})
    assert "| Lower bound per placed order at 15 statements | **11.05** |" in table
    assert "spent 40.0 ms" in table
    assert "| ... the same round trip on aiomysql alone, no SQLAlchemy (for comparison) | 0.150 |" in table


def test_no_floor_without_the_ceiling_phase():
    results = {
        "floor": {"database": PARTS["database"], "http": PARTS["http"]},
        "e2e": {"worker_messages_per_order": 5},
    }

    assert targets(results)["flat"]["floor"] is None
