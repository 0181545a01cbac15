"""`orders-admin`'s usage: help for every command, and exit code 2 with one line for a bad setting
or bad arguments, all before anything is reached (the commands themselves are tested against the
services in tests/integration/test_operator_cli.py)."""

from __future__ import annotations

import pytest

from ops.cli import main

COMMANDS = [
    [],
    ["order"],
    ["dead-letters"],
    ["dead-letters", "list"],
    ["dead-letters", "replay"],
    ["reconcile"],
    ["archive"],
    ["redrive"],
    ["queues"],
    ["queues", "migrate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "orders-admin")
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: orders-admin {' '.join(command)}".rstrip())
    assert "exit codes" in out


def test_bad_setting_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("HOLD_SECONDS", "soon")
    with pytest.raises(SystemExit) as exit_:
        main(["reconcile"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: HOLD_SECONDS: expected a whole number, got 'soon'\n"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["archive", "--batch-size", "0"])
    assert exit_.value.code == 2
    assert "--batch-size: must be at least 1" in capsys.readouterr().err
    assert main(["dead-letters", "replay"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing chosen to replay: pass --message-id ID (repeatable) or --all")
    assert err.count("\n") == 1


def test_queue_migration_needs_a_known_target_type(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["queues", "migrate", "--to", "lazy"])
    assert exit_.value.code == 2
    assert "argument --to: invalid choice: 'lazy' (choose from" in capsys.readouterr().err
