"""The ports and folders a fleet listens on and counts into follow its own PORT and SMTP_PORT."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from config import SettingsError, load_settings
from workers.worker_metrics import metrics_dir, metrics_port, remove_dead_process_files


def test_the_mail_sink_listens_next_to_its_smtp_port_unless_told():
    assert load_settings({}).mail_web_port == 8026
    assert load_settings({"SMTP_PORT": "9025"}).mail_web_port == 9026
    assert load_settings({"SMTP_PORT": "9025", "MAIL_WEB_PORT": "9999"}).mail_web_port == 9999


def test_the_worker_metrics_port_follows_port_unless_told():
    assert load_settings({}).worker_metrics_port == 8091
    # Under honcho the worker (second in Procfile.dev) gets PORT + 100.
    assert load_settings({"PORT": "8180"}).worker_metrics_port == 8191
    assert load_settings({"PORT": "9180"}).worker_metrics_port == 9191
    assert load_settings({"PORT": "8180", "WORKER_METRICS_PORT": "7000"}).worker_metrics_port == 7000
    assert load_settings({"WORKER_METRICS_PORT": "0"}).worker_metrics_port == 0
    assert load_settings({"PORT": "65530"}).worker_metrics_port == 65519


@pytest.mark.parametrize("raw", ["-1", "70000", "metrics"])
def test_a_wrong_worker_metrics_port_is_named(raw):
    with pytest.raises(SettingsError) as refused:
        load_settings({"WORKER_METRICS_PORT": raw})

    assert str(refused.value).startswith("WORKER_METRICS_PORT: ")


def test_dramatiq_own_variables_win_and_the_folder_is_named_after_the_port():
    settings = load_settings({"PORT": "8180"})

    assert metrics_port(settings, {}) == 8191
    assert metrics_dir(settings, {}) == Path(tempfile.gettempdir()) / "orders-worker-metrics-8191"
    assert metrics_port(settings, {"dramatiq_prom_port": "9300"}) == 9300
    assert metrics_dir(settings, {"dramatiq_prom_port": "9300"}).name == "orders-worker-metrics-9300"
    assert metrics_dir(settings, {"dramatiq_prom_db": "/srv/metrics"}) == Path("/srv/metrics")


def test_dead_letters_are_kept_a_week_unless_told():
    assert load_settings({}).dead_letter_ttl_seconds == 604800
    assert load_settings({"DEAD_LETTER_TTL_SECONDS": "86400"}).dead_letter_ttl_seconds == 86400
    with pytest.raises(SettingsError):
        load_settings({"DEAD_LETTER_TTL_SECONDS": "0"})


def test_files_of_dead_processes_go_and_those_of_live_ones_stay(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    live = str(os.getpid())
    names = [
        f"counter_{dead}.db",
        f"histogram_{dead}.db",
        f"gauge_all_{dead}.db",
        f"gauge_livesum_{dead}.db",
        f"counter_{live}.db",
        f"gauge_all_{live}.db",
        "notes.txt",
        "counter_x.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")

    removed = remove_dead_process_files(tmp_path)

    assert sorted(removed) == sorted(names[:4])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(names[4:])
