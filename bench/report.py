"""The figures the issue asks for, the targets they are held to, and the markdown table."""

from __future__ import annotations

from typing import Any

from bench.procs import FLEET_ROLES, OUTSIDE_ROLES, SERVER_ROLES, fleet_total

POST_P99_MS = 50
E2E_ORDERS_PER_S = 300
FLASH_FINAL_S = 10
EXPIRY_P99_MS = 1500
WORKER_RSS_MB = 300


def _get(mapping: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def targets(results: dict) -> dict[str, Any]:
    """Flat keys of latest.json, the targets with whether each was met, and what broke the run."""
    e2e = results.get("e2e") or {}
    flash = results.get("flash") or {}
    expiry = results.get("expiry") or {}
    ceiling = _get(results, "ceiling", "msgs_per_s")
    per_order = e2e.get("worker_messages_per_order")
    orders_per_s = e2e.get("orders_per_s")
    ratio = (orders_per_s / (ceiling / per_order)) if ceiling and per_order and orders_per_s is not None else None
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
        "flash": {key: flash.get(key) for key in ("buyers", "units", "placed", "rejected", "final_s", "exact")},
        "expiry": {key: expiry.get(key) for key in ("holds", "delivered", "p50_ms", "p99_ms", "max_ms",
                                                     "window_s", "rate_per_s")},
        "redis_peer": _peer(results.get("redis_peer")),
        "redis_peer_loaded": _peer(results.get("redis_peer_loaded")),
        "worker_rss_mb": _get(results, "worker_rss", "peak_total_mb"),
        **e2e_figures(e2e),
    }
    baseline = results.get("baseline") or {}
    if baseline:
        flat["baseline"] = {"rev": baseline.get("rev"), "commit": baseline.get("commit"),
                            "e2e_orders_per_s": _get(baseline, "e2e", "orders_per_s"),
                            "worker_rss_mb": _get(baseline, "worker_rss", "peak_total_mb"),
                            **e2e_figures(baseline.get("e2e") or {})}
    checks = []

    def check(name: str, value: Any, target: str, met: bool | None) -> None:
        checks.append({"metric": name, "value": value, "target": target, "met": met})

    if e2e:
        check("e2e_orders_per_s", orders_per_s, f">= {E2E_ORDERS_PER_S}", orders_per_s >= E2E_ORDERS_PER_S)
        p99 = e2e.get("post_p99_ms")
        check("post_p99_ms", p99, f"<= {POST_P99_MS}", p99 is not None and p99 <= POST_P99_MS)
    if flash:
        check("flash_exact", flash.get("exact"), "exact", bool(flash.get("exact")))
        final_s = flash.get("final_s")
        check("flash_final_s", final_s, f"<= {FLASH_FINAL_S}", final_s is not None and final_s <= FLASH_FINAL_S)
    if expiry:
        p99 = expiry.get("p99_ms")
        check("expiry_p99_ms", p99, f"<= {EXPIRY_P99_MS}", p99 is not None and p99 <= EXPIRY_P99_MS)
    if flat["worker_rss_mb"] is not None:
        check("worker_rss_mb", flat["worker_rss_mb"], f"<= {WORKER_RSS_MB}", flat["worker_rss_mb"] <= WORKER_RSS_MB)

    broken = []
    if e2e:
        if e2e.get("not_accepted"):
            broken.append(f"e2e: {e2e['not_accepted']} POST /orders not accepted "
                          f"(statuses {e2e.get('not_accepted_statuses')})")
        if e2e.get("not_placed_after_drain"):
            broken.append(f"e2e: {e2e['not_placed_after_drain']} accepted orders not PLACED after the drain")
        if e2e.get("confirmation_emails_missing"):
            broken.append(f"e2e: {e2e['confirmation_emails_missing']} of {e2e.get('confirmation_emails_expected')} "
                          f"placed orders got no confirmation email within {e2e.get('confirmation_email_wait_s')} s")
    for label, measured in (("e2e", e2e), (f"baseline {baseline.get('commit')} e2e", baseline.get("e2e") or {})):
        opened = measured.get("open_loop") or {}
        if opened.get("not_accepted"):
            broken.append(f"{label} open loop: {opened['not_accepted']} POST /orders not accepted "
                          f"(statuses {opened.get('not_accepted_statuses')})")
        if opened.get("not_placed_after_drain"):
            broken.append(f"{label} open loop: {opened['not_placed_after_drain']} accepted orders not PLACED "
                          f"after the drain")
        if measured is not e2e and measured.get("not_placed_after_drain"):
            broken.append(f"{label}: {measured['not_placed_after_drain']} accepted orders not PLACED after the drain")
    if flash and not flash.get("exact"):
        broken.append(f"flash sale not exact: {flash.get('placed')} placed, {flash.get('rejected')} rejected, "
                      f"{flash.get('other')} other, {flash.get('not_accepted')} not accepted, "
                      f"{flash.get('available_after')} left, for {flash.get('units')} units")
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
        "open_loop": {key: opened.get(key) for key in ("rate_per_s", "window_s", "post_p50_ms", "post_p99_ms",
                                                        "placed_p50_ms", "placed_p99_ms")} if opened else None,
    }


_ROLE_NAMES = {"web": "web", "worker": "worker (main + worker processes)", "scheduler": "scheduler",
               "mariadb": "MariaDB", "rabbitmq": "RabbitMQ", "redis": "Redis", "psp": "psp (sandbox provider)",
               "mail": "mail (sandbox SMTP sink)", "bench": "the bench itself"}


def _cpu_rows(e2e: dict) -> list[tuple[str, str, str, str]]:
    """CPU ms per placed order over the window, a row per process and the fleet + servers total."""
    per_order = e2e.get("cpu_ms_per_order") or {}
    cores = e2e.get("cpu_cores") or {}
    if not per_order:
        return []
    rows = []
    for role in (*FLEET_ROLES, *SERVER_ROLES):
        if role in per_order:
            rows.append((f"CPU per placed order: {_ROLE_NAMES[role]}",
                         f"{per_order[role]:,.1f} ms ({cores.get(role, 0):.2f} cores)", "", ""))
    rows.append(("CPU per placed order: **fleet + servers**", f"**{fleet_total(per_order):,.1f} ms** "
                 f"({fleet_total(cores):.2f} cores)", "", ""))
    outside = [f"{role} {per_order[role]:,.1f} ms" for role in OUTSIDE_ROLES if role in per_order]
    if outside:
        rows.append(("CPU per placed order, outside systems (sandbox psp, mail; not in the total)",
                     ", ".join(outside), "", ""))
    if "bench" in per_order:
        rows.append(("CPU per placed order: the bench itself (not in the total)", f"{per_order['bench']:,.1f} ms",
                     "", ""))
    return rows


def _sql_text(sql: dict) -> str:
    per_order = sql.get("per_order") or {}
    if "statements" not in per_order:
        return "-"
    parts = ", ".join(f"{kind} {per_order.get(kind, 0):,.1f}" for kind in ("select", "insert", "update", "delete"))
    text = f"{per_order['statements']:,.1f} ({parts})"
    others = sql.get("other_connections") or []
    if others:
        databases = sorted({str(other.get("db")) for other in others})
        text += f"; **other databases were connected ({', '.join(databases)}): their statements count too**"
    return text


def _sql_rows(e2e: dict) -> list[tuple[str, str, str, str]]:
    sql = e2e.get("sql") or {}
    per_order = sql.get("per_order") or {}
    if not per_order:
        return []
    return [
        ("SQL statements per placed order (SELECT + DML, MariaDB counters over the window)", _sql_text(sql), "", ""),
        ("Commits / rollbacks per placed order",
         f"{per_order.get('commit', 0):,.1f} / {per_order.get('rollback', 0):,.1f}", "", ""),
    ]


def _open_loop_rows(e2e: dict) -> list[tuple[str, str, str, str]]:
    opened = e2e.get("open_loop") or {}
    if not opened:
        return []
    label = f"Open loop at {opened['rate_per_s']:.1f} orders/s, half the closed-loop rate ({opened['window_s']:g} s)"
    return [
        (f"{label}: POST /orders p50 / p99", f"{_ms(opened.get('post_p50_ms'))} / {_ms(opened.get('post_p99_ms'))}",
         "", ""),
        (f"{label}: POST to PLACED p50 / p99",
         f"{_ms(opened.get('placed_p50_ms'))} / {_ms(opened.get('placed_p99_ms'))}", "", ""),
    ]


def _peer(peer: dict | None) -> dict | None:
    if not peer:
        return None
    return {key: peer.get(key) for key in ("keys", "background_keys", "delivered", "p50_ms", "p99_ms", "max_ms")}


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


def _email_lateness(document: dict, e2e: dict) -> str:
    """PLACED to confirmation email at the sink, p50 / p99; an unknown p99 means emails never came."""
    if not e2e.get("confirmation_emails_expected"):
        return "-"

    def seconds(value: Any) -> str:
        return f"> {e2e.get('confirmation_email_wait_s')}" if value is None else f"{value:,.2f}"

    text = f"{seconds(document.get('confirmation_email_p50_s'))} / {seconds(document.get('confirmation_email_p99_s'))}"
    missing = document.get("confirmation_emails_missing")
    return f"{text} ({missing} never came)" if missing else text


def _met(document: dict, metric: str) -> str:
    for check in document.get("targets", []):
        if check["metric"] == metric:
            return "yes" if check["met"] else "**no**"
    return ""


def render_table(document: dict) -> str:
    """The markdown table: metric | value | target | met?, under a line naming date and machine."""
    m = document["machine"]
    s = document["settings"]
    details = document.get("details", {})
    e2e = details.get("e2e") or {}
    rows: list[tuple[str, str, str, str]] = []
    if document.get("ceiling_msgs_per_s") is not None:
        rows.append((f"Ceiling: no-op actor, {s['worker_processes']} processes x {s['worker_threads']} threads",
                     _n(document["ceiling_msgs_per_s"], " msgs/s"), "", ""))
    if e2e:
        rows += [
            (f"End to end: placed orders/s ({e2e['clients']} clients, {e2e['window_s']:g} s)",
             _n(document["e2e_orders_per_s"], "", 1), f">= {E2E_ORDERS_PER_S}", _met(document, "e2e_orders_per_s")),
            ("POST /orders p50", _ms(document["post_p50_ms"]), "", ""),
            ("POST /orders p99", _ms(document["post_p99_ms"]), f"<= {POST_P99_MS} ms", _met(document, "post_p99_ms")),
            ("POST to PLACED p99", _ms(document["placed_p99_ms"]), "", ""),
            ("Confirmation email lateness under load p50 / p99 (s)", _email_lateness(document, e2e), "", ""),
            ("Messages per order (worker messages + domain events)",
             f"{_n(document['messages_per_order'], '', 2)} + {_n(document['events_per_order'], '', 2)}", "", ""),
            ("Placed orders/s / (ceiling / messages per order)", _n(
                None if document["e2e_share_of_ceiling"] is None else document["e2e_share_of_ceiling"] * 100,
                " %", 1), "", ""),
            *_cpu_rows(e2e),
            *_sql_rows(e2e),
            *_open_loop_rows(e2e),
        ]
    flash = document.get("flash") or {}
    if flash.get("buyers"):
        rows += [
            (f"Flash sale: {flash['buyers']:,} buyers, {flash['units']} units",
             f"{flash['placed']} placed, {flash['rejected']:,} rejected", "exact", _met(document, "flash_exact")),
            ("Flash sale: every order final after", _n(flash["final_s"], " s", 2), f"<= {FLASH_FINAL_S} s",
             _met(document, "flash_final_s")),
        ]
    ex = document.get("expiry") or {}
    if ex.get("holds"):
        rows += [
            (f"Expiry: holds released ({ex['holds']:,} due over {ex['window_s']:g} s, {ex['rate_per_s']:,.0f}/s)",
             f"{ex['delivered']:,} / {ex['holds']:,}", "all", "yes" if ex["delivered"] == ex["holds"] else "**no**"),
            ("Expiry lateness p50 / p99 / max",
             f"{_ms(ex['p50_ms'])} / {_ms(ex['p99_ms'])} / {_ms(ex['max_ms'])}", "p99 <= 1.5 s",
             _met(document, "expiry_p99_ms")),
        ]
    if document.get("worker_rss_mb") is not None:
        rows.append(("Worker RSS, peak (all worker processes)", _n(document["worker_rss_mb"], " MB"),
                     f"<= {WORKER_RSS_MB} MB", _met(document, "worker_rss_mb")))
    for key, label in (("redis_peer", "Redis TTL keys + keyspace events, alone"),
                       ("redis_peer_loaded", "Redis TTL keys + keyspace events, with {bg:,} cache keys")):
        peer = document.get(key)
        if peer:
            rows += [
                (f"{label.format(bg=peer['background_keys'])}: events received",
                 f"{peer['delivered']:,} / {peer['keys']:,}", "", ""),
                (f"{label.format(bg=peer['background_keys'])}: lateness p50 / p99 / max",
                 f"{_ms(peer['p50_ms'])} / {_ms(peer['p99_ms'])} / {_ms(peer['max_ms'])}", "", ""),
            ]
    header = (f"Bench `{document['mode']}` run of {m['date']}: {m['nproc']} CPUs ({m['cpu']}), "
              f"{m['memory_gb']} GB RAM, Linux {m['kernel']}; Python {m['python']}, MariaDB {m['mariadb']}, "
              f"RabbitMQ {m['rabbitmq']}, Redis {m['redis']}, dramatiq {m['dramatiq']}, "
              f"aiohttp {m['aiohttp']}, SQLAlchemy {m['sqlalchemy']}; everything on this one machine.")
    lines = [header, "", "| metric | value | target | met? |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _ratio(current: Any, baseline: Any) -> str:
    if not isinstance(current, (int, float)) or not isinstance(baseline, (int, float)) or not baseline:
        return ""
    return f"{current / baseline:.2f}x"


def render_comparison(document: dict) -> str:
    """The e2e figures of this checkout beside those of the ``--baseline`` commit, with their ratio."""
    details = document.get("details") or {}
    baseline = details.get("baseline") or {}
    current = details.get("e2e") or {}
    if not baseline or not current:
        return ""
    other = baseline.get("e2e") or {}

    def figures(e2e: dict) -> dict[str, Any]:
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
        return values

    ours, theirs = figures(current), figures(other)
    ours["worker RSS peak, MB"] = _get(details, "worker_rss", "peak_total_mb")
    theirs["worker RSS peak, MB"] = _get(baseline, "worker_rss", "peak_total_mb")

    def shown(name: str, value: Any) -> str:
        if value is None:
            return "-"
        if "p50" in name or "p99" in name:
            return _ms(value)
        return _n(value, "", 1)

    label = baseline.get("commit") or baseline.get("rev")
    lines = [f"E2e side by side (`{document['mode']}` mode, same run, same load): this checkout "
             f"({document.get('current', 'current')}) and {label} (its own Procfile and virtualenv; measured "
             f"{baseline.get('measured', 'after')} this checkout).", "",
             f"| e2e | {document.get('current', 'current')} | {label} | ratio |", "|---|---|---|---|"]
    for name in ours:
        if ours.get(name) is None and theirs.get(name) is None:
            continue
        lines.append(f"| {name} | {shown(name, ours.get(name))} | {shown(name, theirs.get(name))} | "
                     f"{_ratio(ours.get(name), theirs.get(name))} |")
    return "\n".join(lines)
