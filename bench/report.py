"""The figures the issue asks for, the targets they are held to, and the markdown table."""

from __future__ import annotations

from typing import Any

from bench.floor import COMMITS_PER_ORDER, REQUESTS_PER_ORDER, TASKS, lower_bound
from bench.procs import FLEET_ROLES, OUTSIDE_ROLES, SERVER_ROLES, fleet_total

# The targets. CPU per placed order (fleet + servers): an absolute figure, or a ratio to the
# ``--baseline`` commit's figure measured in the same run; either one meets it.
CPU_MS_PER_ORDER = 12
CPU_RATIO_TO_BASELINE = 0.13
SQL_STATEMENTS_PER_ORDER = 15
# Placed orders/s (closed loop) as a share of what the ceiling allows: ceiling msgs/s / messages per order.
E2E_SHARE_OF_CEILING = 0.15
# The open loop at half the closed-loop rate.
POST_P50_MS = 10
POST_P99_MS = 50
PLACED_P99_MS = 500
FLASH_FINAL_S = 5
# Expiry lateness, measured while the open loop runs.
EXPIRY_P99_MS = 1500
EXPIRY_MAX_MS = 5000
WORKER_RSS_MB = 300


def _get(mapping: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def _floor(results: dict, flat: dict) -> dict[str, Any] | None:
    """The parts' costs (:mod:`bench.floor`) and the lower bound they give per placed order, at the
    target's statements and at this run's; None unless the ceiling and floor phases both ran."""
    message = _get(results, "ceiling", "cpu_ms_per_message")
    measured = results.get("floor") or {}
    per_order = flat.get("messages_per_order")
    if not message or "database" not in measured or "http" not in measured or not per_order:
        return None
    parts = {"message": message, **measured}
    events = flat.get("events_per_order") or 0.0
    floor = {
        "parts": parts,
        "messages_per_order": per_order,
        "events_per_order": events,
        "at_target": lower_bound(
            parts,
            messages_per_order=per_order,
            events_per_order=events,
            statements_per_order=SQL_STATEMENTS_PER_ORDER,
        ),
    }
    statements, commits = flat.get("sql_statements_per_order"), flat.get("sql_commits_per_order")
    if statements is not None and commits is not None:
        floor["at_measured"] = lower_bound(
            parts,
            messages_per_order=per_order,
            events_per_order=events,
            statements_per_order=statements,
            commits_per_order=commits,
        )
        floor["statements_per_order"], floor["commits_per_order"] = statements, commits
    return floor


def targets(results: dict) -> dict[str, Any]:
    """Flat keys of latest.json, the targets with whether each was met, and what broke the run."""
    e2e = results.get("e2e") or {}
    flash = results.get("flash") or {}
    expiry = results.get("expiry") or {}
    ceiling = _get(results, "ceiling", "msgs_per_s")
    per_order = e2e.get("worker_messages_per_order")
    orders_per_s = e2e.get("orders_per_s")
    ratio = (
        (orders_per_s / (ceiling / per_order)) if ceiling and per_order and orders_per_s is not None else None
    )
    flat = {
        "ceiling_msgs_per_s": ceiling,
        "e2e_orders_per_s": orders_per_s,
        "post_p50_ms": e2e.get("post_p50_ms"),
        "post_p99_ms": e2e.get("post_p99_ms"),
        "placed_p99_ms": e2e.get("placed_p99_ms"),
        "confirmation_email_p50_s": e2e.get("confirmation_email_p50_s"),
        "confirmation_email_p99_s": e2e.get("confirmation_email_p99_s"),
        "confirmation_emails_missing": e2e.get("confirmation_emails_missing"),
        "messages_per_order": per_order,
        "events_per_order": e2e.get("events_per_order"),
        "e2e_share_of_ceiling": round(ratio, 3) if ratio is not None else None,
        "flash": {
            key: flash.get(key) for key in ("buyers", "units", "placed", "rejected", "final_s", "exact")
        },
        "expiry": {
            key: expiry.get(key)
            for key in (
                "holds",
                "delivered",
                "p50_ms",
                "p99_ms",
                "max_ms",
                "window_s",
                "rate_per_s",
                "released_within_grace",
            )
        },
        "expiry_open_loop": _open_loop_figures(expiry.get("open_loop") or {}),
        "redis_peer": _peer(results.get("redis_peer")),
        "redis_peer_loaded": _peer(results.get("redis_peer_loaded")),
        "worker_rss_mb": _get(results, "worker_rss", "peak_total_mb"),
        **e2e_figures(e2e),
    }
    flat["floor"] = _floor(results, flat)
    baseline = results.get("baseline") or {}
    if baseline:
        flat["baseline"] = {
            "rev": baseline.get("rev"),
            "commit": baseline.get("commit"),
            "e2e_orders_per_s": _get(baseline, "e2e", "orders_per_s"),
            "worker_rss_mb": _get(baseline, "worker_rss", "peak_total_mb"),
            **e2e_figures(baseline.get("e2e") or {}),
        }
    checks = []

    def check(name: str, value: Any, target: str, met: bool | None, **more: Any) -> None:
        """``met`` None: the figure could not be judged in this run (``note`` says why)."""
        checks.append({"metric": name, "value": value, "target": target, "met": met, **more})

    def at_most(value: Any, limit: float) -> bool:
        return value is not None and value <= limit

    if e2e:
        cpu_ms = flat.get("cpu_ms_per_order_fleet_and_servers")
        base_ms = _get(flat, "baseline", "cpu_ms_per_order_fleet_and_servers")
        cpu_ratio = round(cpu_ms / base_ms, 3) if cpu_ms is not None and base_ms else None
        by_absolute = at_most(cpu_ms, CPU_MS_PER_ORDER)
        by_ratio = at_most(cpu_ratio, CPU_RATIO_TO_BASELINE)
        met_by = (
            "both"
            if by_absolute and by_ratio
            else "absolute"
            if by_absolute
            else "ratio"
            if by_ratio
            else None
        )
        check(
            "cpu_ms_per_order_fleet_and_servers",
            cpu_ms,
            f"<= {CPU_MS_PER_ORDER} ms, or <= {CPU_RATIO_TO_BASELINE}x the baseline's",
            by_absolute or by_ratio,
            met_by=met_by,
            baseline_ms=base_ms,
            ratio_to_baseline=cpu_ratio,
            baseline_commit=_get(flat, "baseline", "commit"),
        )
        statements = flat.get("sql_statements_per_order")
        check(
            "sql_statements_per_order",
            statements,
            f"<= {SQL_STATEMENTS_PER_ORDER}",
            at_most(statements, SQL_STATEMENTS_PER_ORDER),
        )
        share = flat["e2e_share_of_ceiling"]
        check(
            "e2e_share_of_ceiling",
            share,
            f">= {E2E_SHARE_OF_CEILING:.0%}",
            None if ceiling is None else share is not None and share >= E2E_SHARE_OF_CEILING,
            **({"note": "the ceiling was not measured in this run"} if ceiling is None else {}),
        )
        opened = e2e.get("open_loop") or {}
        check(
            "open_loop_post_p50_ms",
            opened.get("post_p50_ms"),
            f"<= {POST_P50_MS}",
            at_most(opened.get("post_p50_ms"), POST_P50_MS),
        )
        check(
            "open_loop_post_p99_ms",
            opened.get("post_p99_ms"),
            f"<= {POST_P99_MS}",
            at_most(opened.get("post_p99_ms"), POST_P99_MS),
        )
        check(
            "open_loop_placed_p99_ms",
            opened.get("placed_p99_ms"),
            f"<= {PLACED_P99_MS}",
            at_most(opened.get("placed_p99_ms"), PLACED_P99_MS),
        )
    if flash:
        check("flash_exact", flash.get("exact"), "exact", bool(flash.get("exact")))
        final_s = flash.get("final_s")
        check("flash_final_s", final_s, f"<= {FLASH_FINAL_S}", at_most(final_s, FLASH_FINAL_S))
    if expiry:
        # The expiry figure is the one measured under the open-loop load.
        loaded = bool(expiry.get("open_loop"))
        note = {} if loaded else {"note": "not under the open-loop load"}
        for metric, key, limit in (
            ("expiry_p99_ms", "p99_ms", EXPIRY_P99_MS),
            ("expiry_max_ms", "max_ms", EXPIRY_MAX_MS),
        ):
            check(
                metric,
                expiry.get(key),
                f"<= {limit}",
                at_most(expiry.get(key), limit) if loaded else None,
                **note,
            )
    if flat["worker_rss_mb"] is not None:
        check(
            "worker_rss_mb",
            flat["worker_rss_mb"],
            f"<= {WORKER_RSS_MB}",
            flat["worker_rss_mb"] <= WORKER_RSS_MB,
        )

    broken = []
    if e2e:
        if e2e.get("not_accepted"):
            broken.append(
                f"e2e: {e2e['not_accepted']} POST /orders not accepted "
                f"(statuses {e2e.get('not_accepted_statuses')})"
            )
        if e2e.get("not_placed_after_drain"):
            broken.append(f"e2e: {e2e['not_placed_after_drain']} accepted orders not PLACED after the drain")
        if e2e.get("confirmation_emails_missing"):
            broken.append(
                f"e2e: {e2e['confirmation_emails_missing']} of {e2e.get('confirmation_emails_expected')} "
                f"placed orders got no confirmation email within {e2e.get('confirmation_email_wait_s')} s"
            )
    for label, measured in (
        ("e2e", e2e),
        (f"baseline {baseline.get('commit')} e2e", baseline.get("e2e") or {}),
        ("expiry phase", expiry),
    ):
        opened = measured.get("open_loop") or {}
        if opened.get("not_accepted"):
            broken.append(
                f"{label} open loop: {opened['not_accepted']} POST /orders not accepted "
                f"(statuses {opened.get('not_accepted_statuses')})"
            )
        if opened.get("not_placed_after_drain"):
            broken.append(
                f"{label} open loop: {opened['not_placed_after_drain']} accepted orders not PLACED "
                f"after the drain"
            )
        if measured is not e2e and measured is not expiry and measured.get("not_placed_after_drain"):
            broken.append(
                f"{label}: {measured['not_placed_after_drain']} accepted orders not PLACED after the drain"
            )
    if flash and not flash.get("exact"):
        broken.append(
            f"flash sale not exact: {flash.get('placed')} placed, {flash.get('rejected')} rejected, "
            f"{flash.get('other')} other, {flash.get('not_accepted')} not accepted, "
            f"{flash.get('available_after')} left, for {flash.get('units')} units"
        )
    if expiry:
        if expiry.get("delivered") != expiry.get("holds"):
            broken.append(f"expiry: {expiry.get('delivered')} of {expiry.get('holds')} holds released")
        if expiry.get("released_early"):
            broken.append(f"expiry: {expiry['released_early']} holds released before they were due")
    return {"flat": flat, "targets": checks, "broken": broken}


def e2e_figures(e2e: dict) -> dict[str, Any]:
    """The flat figures of one e2e measurement that later changes are judged by."""
    if not e2e:
        return {}
    sql = _get(e2e, "sql", "per_order") or {}
    opened = e2e.get("open_loop") or {}
    cpu = e2e.get("cpu_ms_per_order") or {}
    return {
        "cpu_ms_per_order": cpu,
        "cpu_ms_per_order_fleet_and_servers": round(fleet_total(cpu), 1) if cpu else None,
        "sql_statements_per_order": sql.get("statements"),
        "sql_commits_per_order": sql.get("commit"),
        "sql_per_order": sql,
        "open_loop": _open_loop_figures(opened),
    }


def _open_loop_figures(opened: dict) -> dict[str, Any] | None:
    return (
        {
            key: opened.get(key)
            for key in (
                "rate_per_s",
                "window_s",
                "post_p50_ms",
                "post_p99_ms",
                "placed_p50_ms",
                "placed_p99_ms",
            )
        }
        if opened
        else None
    )


_ROLE_NAMES = {
    "web": "web",
    "worker": "worker (main + worker processes)",
    "scheduler": "scheduler",
    "mariadb": "MariaDB",
    "rabbitmq": "RabbitMQ",
    "redis": "Redis",
    "psp": "psp (sandbox provider)",
    "mail": "mail (sandbox SMTP sink)",
    "bench": "the bench itself",
}


def _cpu_rows(document: dict, e2e: dict) -> list[tuple[str, str, str, str]]:
    """CPU ms per placed order over the window, a row per process and the fleet + servers total
    (held to its target: absolute, or as a ratio to the ``--baseline`` commit's)."""
    per_order = e2e.get("cpu_ms_per_order") or {}
    cores = e2e.get("cpu_cores") or {}
    target = f"<= {CPU_MS_PER_ORDER} ms, or <= {CPU_RATIO_TO_BASELINE}x the `--baseline` commit's"
    if not per_order:
        return [
            (
                "CPU per placed order: **fleet + servers**",
                "- (no order placed in the window)",
                target,
                _met(document, "cpu_ms_per_order_fleet_and_servers"),
            )
        ]
    rows = []
    for role in (*FLEET_ROLES, *SERVER_ROLES):
        if role in per_order:
            rows.append(
                (
                    f"CPU per placed order: {_ROLE_NAMES[role]}",
                    f"{per_order[role]:,.1f} ms ({cores.get(role, 0):.2f} cores)",
                    "",
                    "",
                )
            )
    value = f"**{fleet_total(per_order):,.1f} ms** ({fleet_total(cores):.2f} cores)"
    cpu = _check(document, "cpu_ms_per_order_fleet_and_servers") or {}
    if cpu.get("ratio_to_baseline") is not None:
        value += (
            f"; **{cpu['ratio_to_baseline']:.2f}x** {cpu.get('baseline_commit')}'s "
            f"{cpu['baseline_ms']:,.1f} ms (same run)"
        )
    else:
        value += "; no baseline measured in this run (no ratio)"
    rows.append(
        (
            "CPU per placed order: **fleet + servers**",
            value,
            target,
            _met(document, "cpu_ms_per_order_fleet_and_servers"),
        )
    )
    outside = [f"{role} {per_order[role]:,.1f} ms" for role in OUTSIDE_ROLES if role in per_order]
    if outside:
        rows.append(
            (
                "CPU per placed order, outside systems (sandbox psp, mail; not in the total)",
                ", ".join(outside),
                "",
                "",
            )
        )
    if "bench" in per_order:
        rows.append(
            (
                "CPU per placed order: the bench itself (not in the total)",
                f"{per_order['bench']:,.1f} ms",
                "",
                "",
            )
        )
    return rows


def _sql_text(sql: dict) -> str:
    per_order = sql.get("per_order") or {}
    if "statements" not in per_order:
        return "-"
    parts = ", ".join(
        f"{kind} {per_order.get(kind, 0):,.1f}" for kind in ("select", "insert", "update", "delete")
    )
    text = f"{per_order['statements']:,.1f} ({parts})"
    others = sql.get("other_connections") or []
    if others:
        databases = sorted({str(other.get("db")) for other in others})
        text += f"; **other databases were connected ({', '.join(databases)}): their statements count too**"
    return text


def _sql_rows(document: dict, e2e: dict) -> list[tuple[str, str, str, str]]:
    sql = e2e.get("sql") or {}
    per_order = sql.get("per_order") or {}
    label = (
        "SQL statements per placed order "
        "(SELECT + DML, MariaDB counters over the window, the bench's own out)"
    )
    target, met = f"<= {SQL_STATEMENTS_PER_ORDER}", _met(document, "sql_statements_per_order")
    if not per_order:
        return [(label, "- (no order placed in the window)", target, met)]
    return [
        (label, _sql_text(sql), target, met),
        (
            "Commits / rollbacks per placed order",
            f"{per_order.get('commit', 0):,.1f} / {per_order.get('rollback', 0):,.1f}",
            "",
            "",
        ),
    ]


def _slip(opened: dict) -> str:
    """How late the bench itself sent (latencies count from the schedule, so this is in them)."""
    slip = opened.get("send_slip_p99_ms")
    return f" (the bench's sends slipped p99 {_ms(slip)})" if slip is not None and slip > 5 else ""


def _open_loop_rows(document: dict, e2e: dict) -> list[tuple[str, str, str, str]]:
    """The open loop at half the closed-loop rate, held to the POST and POST-to-PLACED targets."""
    opened = e2e.get("open_loop") or {}
    post_target = f"p50 <= {POST_P50_MS} ms, p99 <= {POST_P99_MS} ms"
    placed_target = f"p99 <= {PLACED_P99_MS} ms"
    post_met = _met(document, "open_loop_post_p50_ms", "open_loop_post_p99_ms")
    placed_met = _met(document, "open_loop_placed_p99_ms")
    if not opened:
        label = "Open loop at half the closed-loop rate"
        return [
            (f"{label}: POST /orders p50 / p99", "- (not run: no closed-loop rate)", post_target, post_met),
            (f"{label}: POST to PLACED p50 / p99", "-", placed_target, placed_met),
        ]
    label = (
        f"Open loop at {opened['rate_per_s']:.1f} orders/s, "
        f"half the closed-loop rate ({opened['window_s']:g} s)"
    )
    return [
        (
            f"{label}: POST /orders p50 / p99",
            f"{_ms(opened.get('post_p50_ms'))} / {_ms(opened.get('post_p99_ms'))}{_slip(opened)}",
            post_target,
            post_met,
        ),
        (
            f"{label}: POST to PLACED p50 / p99",
            f"{_ms(opened.get('placed_p50_ms'))} / {_ms(opened.get('placed_p99_ms'))}",
            placed_target,
            placed_met,
        ),
    ]


def _expiry_load_rows(expiry: dict) -> list[tuple[str, str, str, str]]:
    """The open-loop load that ran while the holds fell due (reported beside the expiry figures)."""
    load = expiry.get("open_loop") or {}
    if not load:
        return [
            (
                "During expiry: open-loop order load",
                "none (no open-loop rate from an e2e phase in this run)",
                "",
                "",
            )
        ]
    label = (
        f"During expiry: open loop at {load['rate_per_s']:.1f} orders/s ({load['window_s']:g} s, "
        f"{load.get('posts', 0):,} orders)"
    )
    return [
        (
            f"{label}: POST /orders p50 / p99",
            f"{_ms(load.get('post_p50_ms'))} / {_ms(load.get('post_p99_ms'))}{_slip(load)}",
            "",
            "",
        ),
        (
            f"{label}: POST to PLACED p50 / p99",
            f"{_ms(load.get('placed_p50_ms'))} / {_ms(load.get('placed_p99_ms'))}",
            "",
            "",
        ),
    ]


def _peer(peer: dict | None) -> dict | None:
    if not peer:
        return None
    return {
        key: peer.get(key) for key in ("keys", "background_keys", "delivered", "p50_ms", "p99_ms", "max_ms")
    }


def _n(value: Any, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        text = f"{value:,.{digits}f}"
    else:
        text = str(value)
    return f"{text}{unit}"


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


def _released(ex: dict, grace_s: Any) -> str:
    """Holds released of holds, and how many of them only after the grace past the last one due."""
    text = f"{ex['delivered']:,} / {ex['holds']:,}"
    within = ex.get("released_within_grace")
    if within is not None and within < ex["delivered"]:
        text += (
            f" ({ex['delivered'] - within:,} of them more than {_n(grace_s, ' s')} after the last was due)"
        )
    return text


def _share(document: dict) -> str:
    """Placed orders/s as a share of ceiling / messages per order, with the figures it comes from."""
    share, ceiling = document.get("e2e_share_of_ceiling"), document.get("ceiling_msgs_per_s")
    if share is None:
        return "- (no ceiling in this run)" if ceiling is None else "-"
    per_order = document.get("messages_per_order")
    return (
        f"{share * 100:,.1f} % ({_n(document.get('e2e_orders_per_s'), '', 1)} of "
        f"{_n(ceiling)} / {_n(per_order, '', 2)} = {_n(ceiling / per_order, '', 1)} orders/s)"
    )


def _email_lateness(document: dict, e2e: dict) -> str:
    """PLACED to confirmation email at the sink, p50 / p99; an unknown p99 means emails never came."""
    if not e2e.get("confirmation_emails_expected"):
        return "-"

    def seconds(value: Any) -> str:
        return f"> {e2e.get('confirmation_email_wait_s')}" if value is None else f"{value:,.2f}"

    p50, p99 = document.get("confirmation_email_p50_s"), document.get("confirmation_email_p99_s")
    text = f"{seconds(p50)} / {seconds(p99)}"
    missing = document.get("confirmation_emails_missing")
    return f"{text} ({missing} never came)" if missing else text


def _check(document: dict, metric: str) -> dict | None:
    for check in document.get("targets", []):
        if check["metric"] == metric:
            return check
    return None


def _met(document: dict, *metrics: str) -> str:
    """yes / **no** for the checks of one row (which of several missed; how the CPU target was met);
    "-" when the figure could not be judged in this run."""
    checks = [check for check in (_check(document, metric) for metric in metrics) if check]
    if not checks:
        return ""
    unjudged = [check for check in checks if check["met"] is None]
    if unjudged:
        return f"- ({unjudged[0].get('note', 'not judged')})"
    missed = [check for check in checks if not check["met"]]
    if missed:
        if len(checks) == 1:
            if "met_by" in checks[0]:  # either of two ways would have met it
                return "**no** (neither)" if checks[0].get("ratio_to_baseline") is not None else "**no**"
            return "**no**"
        return f"**no** ({', '.join(_short(check['metric']) for check in missed)})"
    met_by = [check["met_by"] for check in checks if check.get("met_by")]
    return f"yes ({met_by[0]})" if met_by else "yes"


def _short(metric: str) -> str:
    """``open_loop_post_p99_ms`` -> ``p99``, ``expiry_max_ms`` -> ``max``."""
    return metric.removesuffix("_ms").rsplit("_", 1)[-1]


def render_table(document: dict) -> str:
    """The markdown table: metric | value | target | met?, under a line naming date and machine."""
    m = document["machine"]
    s = document["settings"]
    details = document.get("details", {})
    e2e = details.get("e2e") or {}
    rows: list[tuple[str, str, str, str]] = []
    if document.get("ceiling_msgs_per_s") is not None:
        rows.append(
            (
                f"Ceiling: no-op actor, {s['worker_processes']} processes x {s['worker_threads']} threads",
                _n(document["ceiling_msgs_per_s"], " msgs/s"),
                "",
                "",
            )
        )
    if e2e:
        rows += [
            (
                f"End to end: placed orders/s, closed loop ({e2e['clients']} clients, {e2e['window_s']:g} s)",
                _n(document["e2e_orders_per_s"], "", 1),
                "",
                "",
            ),
            ("POST /orders p50 (closed loop)", _ms(document["post_p50_ms"]), "", ""),
            ("POST /orders p99 (closed loop)", _ms(document["post_p99_ms"]), "", ""),
            ("POST to PLACED p99 (closed loop)", _ms(document["placed_p99_ms"]), "", ""),
            ("Confirmation email lateness under load p50 / p99 (s)", _email_lateness(document, e2e), "", ""),
            (
                "Messages per order (worker messages + domain events)",
                f"{_n(document['messages_per_order'], '', 2)} + {_n(document['events_per_order'], '', 2)}",
                "",
                "",
            ),
            (
                "Placed orders/s / (ceiling / messages per order)",
                _share(document),
                f">= {E2E_SHARE_OF_CEILING * 100:g} %",
                _met(document, "e2e_share_of_ceiling"),
            ),
            *_cpu_rows(document, e2e),
            *_sql_rows(document, e2e),
            *_open_loop_rows(document, e2e),
        ]
    flash = document.get("flash") or {}
    if flash.get("buyers"):
        rows += [
            (
                f"Flash sale: {flash['buyers']:,} buyers, {flash['units']} units",
                f"{flash['placed']} placed, {flash['rejected']:,} rejected",
                "exact",
                _met(document, "flash_exact"),
            ),
            (
                "Flash sale: every order final after",
                _n(flash["final_s"], " s", 2),
                f"<= {FLASH_FINAL_S} s",
                _met(document, "flash_final_s"),
            ),
        ]
    ex = document.get("expiry") or {}
    if ex.get("holds"):
        loaded = details.get("expiry") or {}
        under = "during the open-loop load" if loaded.get("open_loop") else "**without** an order load"
        if (ex.get("first_due_in_s") or 0) < 0:
            # The bench published the last holds after the first fell due: that delay is its own.
            under += (
                f" (**the bench published its holds {-ex['first_due_in_s']:g} s after the first was due:"
                " the lateness includes that**)"
            )
        rows += [
            (
                f"Expiry: holds released ({ex['holds']:,} due over {ex['window_s']:g} s, "
                f"{ex['rate_per_s']:,.0f}/s)",
                _released(ex, s.get("hold_grace_s")),
                "all",
                "yes" if ex["delivered"] == ex["holds"] else "**no**",
            ),
            (
                f"Expiry lateness p50 / p99 / max, {under}",
                f"{_ms(ex['p50_ms'])} / {_ms(ex['p99_ms'])} / {_ms(ex['max_ms'])}",
                f"p99 <= {EXPIRY_P99_MS / 1000:g} s, max <= {EXPIRY_MAX_MS / 1000:g} s, under the load",
                _met(document, "expiry_p99_ms", "expiry_max_ms"),
            ),
            *_expiry_load_rows(loaded),
        ]
    if document.get("worker_rss_mb") is not None:
        rows.append(
            (
                "Worker RSS, peak (all worker processes)",
                _n(document["worker_rss_mb"], " MB"),
                f"<= {WORKER_RSS_MB} MB",
                _met(document, "worker_rss_mb"),
            )
        )
    for key, label in (
        ("redis_peer", "Redis TTL keys + keyspace events, alone"),
        ("redis_peer_loaded", "Redis TTL keys + keyspace events, with {bg:,} cache keys"),
    ):
        peer = document.get(key)
        if peer:
            rows += [
                (
                    f"{label.format(bg=peer['background_keys'])}: events received",
                    f"{peer['delivered']:,} / {peer['keys']:,}",
                    "",
                    "",
                ),
                (
                    f"{label.format(bg=peer['background_keys'])}: lateness p50 / p99 / max",
                    f"{_ms(peer['p50_ms'])} / {_ms(peer['p99_ms'])} / {_ms(peer['max_ms'])}",
                    "",
                    "",
                ),
            ]
    header = (
        f"Bench `{document['mode']}` run of {m['date']}: {m['nproc']} CPUs ({m['cpu']}), "
        f"{m['memory_gb']} GB RAM, Linux {m['kernel']}; Python {m['python']}, MariaDB {m['mariadb']}, "
        f"RabbitMQ {m['rabbitmq']}, Redis {m['redis']}, dramatiq {m['dramatiq']}, "
        f"aiohttp {m['aiohttp']}, SQLAlchemy {m['sqlalchemy']}; everything on this one machine."
    )
    lines = [header, "", "| metric | value | target | met? |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _ratio(current: Any, baseline: Any) -> str:
    if not isinstance(current, (int, float)) or not isinstance(baseline, (int, float)) or not baseline:
        return ""
    return f"{current / baseline:.2f}x"


def _side_by_side_figures(measured: dict) -> dict[str, Any]:
    """The e2e (and, when measured, expiry) figures of one fleet, by row name, for a side by side."""
    e2e = measured.get("e2e") or {}
    flat = e2e_figures(e2e)
    cpu = flat.get("cpu_ms_per_order") or {}
    sql = flat.get("sql_per_order") or {}
    opened = flat.get("open_loop") or {}
    values: dict[str, Any] = {"placed orders/s (closed loop)": e2e.get("orders_per_s")}
    for role in (*FLEET_ROLES, *SERVER_ROLES):
        values[f"CPU ms per order: {_ROLE_NAMES[role]}"] = cpu.get(role)
    values["CPU ms per order: **fleet + servers**"] = flat.get("cpu_ms_per_order_fleet_and_servers")
    for role in OUTSIDE_ROLES:
        values[f"CPU ms per order: {_ROLE_NAMES[role]}"] = cpu.get(role)
    values["SQL statements per order (SELECT + DML)"] = sql.get("statements")
    for kind in ("select", "insert", "update", "delete"):
        values[f"SQL per order: {kind}"] = sql.get(kind)
    values["SQL per order: commits"] = sql.get("commit")
    values["worker messages per order"] = e2e.get("worker_messages_per_order")
    values["POST /orders p50 (closed loop)"] = e2e.get("post_p50_ms")
    values["POST /orders p99 (closed loop)"] = e2e.get("post_p99_ms")
    values["POST to PLACED p99 (closed loop)"] = e2e.get("placed_p99_ms")
    if opened:
        values["open loop: orders/s sent"] = opened.get("rate_per_s")
        values["open loop: POST p50"] = opened.get("post_p50_ms")
        values["open loop: POST p99"] = opened.get("post_p99_ms")
        values["open loop: POST to PLACED p50"] = opened.get("placed_p50_ms")
        values["open loop: POST to PLACED p99"] = opened.get("placed_p99_ms")
    expiry = measured.get("expiry") or {}
    if expiry:
        values["expiry: holds released / due"] = expiry.get("delivered")
        values["expiry: release lateness p50"] = expiry.get("p50_ms")
        values["expiry: release lateness p99"] = expiry.get("p99_ms")
        values["expiry: release lateness max"] = expiry.get("max_ms")
    values["worker RSS peak, MB"] = _get(measured, "worker_rss", "peak_total_mb")
    return values


def _side_by_side(header: str, labels: tuple[str, str], ours: dict, theirs: dict) -> list[str]:
    """Table lines of two fleets' figures (see :func:`_side_by_side_figures`) with their ratio."""

    def shown(name: str, value: Any) -> str:
        if value is None:
            return "-"
        if any(word in name for word in ("p50", "p99", "max")):
            return _ms(value)
        return _n(value, "", 1)

    lines = [f"| {header} | {labels[0]} | {labels[1]} | ratio |", "|---|---|---|---|"]
    for name in ours:
        if ours.get(name) is None and theirs.get(name) is None:
            continue
        lines.append(
            f"| {name} | {shown(name, ours.get(name))} | {shown(name, theirs.get(name))} | "
            f"{_ratio(ours.get(name), theirs.get(name))} |"
        )
    return lines


def render_comparison(document: dict) -> str:
    """The e2e figures of this checkout beside those of the ``--baseline`` commit, with their ratio."""
    details = document.get("details") or {}
    baseline = details.get("baseline") or {}
    if not baseline or not details.get("e2e"):
        return ""
    ours = _side_by_side_figures({"e2e": details.get("e2e"), "worker_rss": details.get("worker_rss")})
    theirs = _side_by_side_figures({"e2e": baseline.get("e2e"), "worker_rss": baseline.get("worker_rss")})
    label = baseline.get("commit") or baseline.get("rev")
    current = document.get("current", "current")
    return "\n".join(
        [
            f"E2e side by side (`{document['mode']}` mode, same run, same load): this checkout "
            f"({current}) and {label} (its own Procfile and virtualenv; measured "
            f"{baseline.get('measured', 'after')} this checkout).",
            "",
            *_side_by_side("e2e", (str(current), str(label)), ours, theirs),
        ]
    )


def render_cluster_comparison(document: dict) -> str:
    """The figures on a 3-node cluster with quorum queues beside those on the single classic node."""
    details = document.get("details") or {}
    cluster = details.get("cluster") or {}
    if not cluster:
        return ""
    # The single node's figures of the scenarios the cluster ran too.
    single = {key: details.get(key) for key in ("e2e", "expiry", "worker_rss") if key in cluster}
    ours, theirs = _side_by_side_figures(cluster), _side_by_side_figures(single)
    return "\n".join(
        [
            f"The cost of replication (`{document['mode']}` mode, same run, same load): the fleet on a "
            "3-node RabbitMQ cluster with quorum queues (every message confirmed by a majority) beside "
            "the same fleet on the single node with classic queues. RabbitMQ CPU counts every node.",
            "",
            *_side_by_side("e2e and expiry", ("3 nodes, quorum", "1 node, classic"), ours, theirs),
        ]
    )


def render_floor(document: dict) -> str:
    """What the parts of an order cost alone here, and the least CPU a placed order can take in this stack."""
    floor = document.get("floor")
    if not floor:
        return ""
    parts = floor["parts"]
    publish, consume = parts["message"]["publish"], parts["message"]["consume"]
    database, http = parts["database"], parts["http"]
    at_target = floor["at_target"]
    rows = [
        (
            "One message, published with confirms (publisher + RabbitMQ)",
            _floor_ms(sum(publish.values())),
            ", ".join(f"{role} {value:.3f}" for role, value in publish.items()),
        ),
        (
            "One message, handled by a no-op actor (worker + RabbitMQ)",
            _floor_ms(sum(consume.values())),
            ", ".join(f"{role} {value:.3f}" for role, value in consume.items()),
        ),
        (
            "One database round trip: statement or commit (SQLAlchemy Core + aiomysql; MariaDB)",
            _floor_ms(database["client"] + database["mariadb"]),
            f"client {database['client']:.3f}, MariaDB {database['mariadb']:.3f}; "
            f"{database['round_trips_per_s']:,}/s from {TASKS} tasks",
        ),
    ]
    driver = database.get("driver_alone")
    if driver:
        rows.append(
            (
                "... the same round trip on aiomysql alone, no SQLAlchemy (for comparison)",
                _floor_ms(driver["client"] + driver["mariadb"]),
                f"client {driver['client']:.3f}, MariaDB {driver['mariadb']:.3f}; "
                f"{driver['round_trips_per_s']:,}/s from {TASKS} tasks",
            )
        )
    rows += [
        (
            "One gateway request (GET /healthz, all middleware)",
            _floor_ms(http["web"]),
            f"{http['requests_per_s']:,}/s from {TASKS} clients",
        ),
        (
            f"Lower bound per placed order at {SQL_STATEMENTS_PER_ORDER} statements",
            f"**{_floor_ms(at_target['total'])}**",
            f"{_n(floor['messages_per_order'], '', 2)} messages {at_target['messages']:.2f} + "
            f"{_n(floor.get('events_per_order', 0), '', 2)} events {at_target.get('events', 0):.2f} + "
            f"{SQL_STATEMENTS_PER_ORDER} statements and {COMMITS_PER_ORDER} commits "
            f"{at_target['round_trips']:.2f} + "
            f"{REQUESTS_PER_ORDER} requests {at_target['requests']:.2f}; target {CPU_MS_PER_ORDER} ms",
        ),
    ]
    measured = floor.get("at_measured")
    if measured:
        spent = document.get("cpu_ms_per_order_fleet_and_servers")
        rows.append(
            (
                f"Lower bound at this run's {floor['statements_per_order']:.1f} statements and "
                f"{floor['commits_per_order']:.1f} commits",
                _floor_ms(measured["total"]),
                f"messages {measured['messages']:.2f} + events {measured.get('events', 0):.2f} + "
                f"round trips {measured['round_trips']:.2f} + "
                f"requests {measured['requests']:.2f}; spent {_n(spent, ' ms', 1)}",
            )
        )
    lines = [
        "The floor (same run): CPU ms the parts of a placed order cost alone, and what a placed order "
        "cannot cost less than in this stack (everything else an order does is on top).",
        "",
        "| part | CPU ms | how |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _floor_ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"
