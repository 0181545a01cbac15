"""Settings whose values are words are read case-insensitively (``LOG_LEVEL=info`` is fine)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from config import SettingsError, load_settings

STRONG_SECRET = "a-production-signing-secret-of-32-chars-or-more"


@pytest.mark.parametrize(
    ("name", "raw", "field", "expected"),
    [
        ("LOG_LEVEL", "info", "log_level", "INFO"),
        ("LOG_LEVEL", "Warning", "log_level", "WARNING"),
        ("LOG_FORMAT", "JSON", "log_format", "json"),
        ("LOG_FORMAT", "Console", "log_format", "console"),
        ("LATE_PAYMENT_POLICY", "Refund", "late_payment_policy", "refund"),
        ("LATE_PAYMENT_POLICY", "REINSTATE", "late_payment_policy", "reinstate"),
    ],
)
def test_a_word_in_any_case_gives_its_canonical_spelling(name, raw, field, expected):
    assert getattr(load_settings({name: raw}), field) == expected


def test_env_production_in_capitals_is_production():
    settings = load_settings({"ENV": "PRODUCTION", "TOKEN_SECRET": STRONG_SECRET})

    assert settings.env == "production"


def test_an_unknown_word_is_still_refused_in_one_line():
    with pytest.raises(SettingsError) as refused:
        load_settings({"LOG_LEVEL": "chatty"})

    assert str(refused.value) == "LOG_LEVEL: expected one of DEBUG, INFO, WARNING, ERROR, got 'chatty'"


def test_a_process_starts_and_logs_with_lowercase_words():
    # What every entry point does first: read the settings (or exit 2) and set up logging.
    program = (
        "from config import settings_or_exit\n"
        "from config.logging import configure_logging\n"
        "import structlog\n"
        "settings = settings_or_exit()\n"
        "configure_logging(settings, 'probe')\n"
        "structlog.get_logger('probe').info('probe.started', log_level=settings.log_level)\n"
        "structlog.get_logger('probe').debug('probe.hidden')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "JSON",
            "LATE_PAYMENT_POLICY": "Refund",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["event"], line["level"], line["log_level"]) for line in lines] == [
        ("probe.started", "info", "INFO")
    ]
