"""Settings: every contract variable has a default; a wrong value is one line naming it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from config import Settings, SettingsError, load_settings
from config.settings import DEV_TOKEN_SECRET, is_development, uses_dev_token_secret

STRONG_SECRET = "k3B9-unguessable-signing-secret-of-40-chars"

CONTRACT = {
    "PORT": 8080,
    "DATABASE_URL": "mysql+aiomysql://root@127.0.0.1:3306/orders",
    "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ADMIN_TOKEN": "dev-admin-token",
    "HOLD_SECONDS": 900,
    "LATE_PAYMENT_POLICY": "reinstate",
    "PSP_URL": "http://127.0.0.1:8090",
    "PSP_PORT": 8090,
    "PSP_WEBHOOK_SECRET": "dev-webhook-secret",
    "GATEWAY_URL": "http://127.0.0.1:8080",
    "SMTP_URL": "smtp://127.0.0.1:8025",
    "SMTP_PORT": 8025,
    "MAIL_FROM": "orders@example.com",
    "EVENTS_EXCHANGE": "orders.events",
    "ARCHIVE_AFTER_SECONDS": 2592000,
    "RECONCILE_EVERY_SECONDS": 300,
    "TOKEN_SECRET": DEV_TOKEN_SECRET,
    "TRUSTED_PROXIES": (),
    "RETURN_WINDOW_SECONDS": 2592000,
    "QUEUE_TYPE": "classic",
    "PSP_PROVIDER": "sandbox",
    "STRIPE_API_KEY": "",
    "STRIPE_WEBHOOK_SECRET": "",
    "STRIPE_API_BASE": "https://api.stripe.com",
}


def test_every_contract_variable_has_its_documented_default():
    settings = load_settings({})
    assert {name: getattr(settings, name.lower()) for name in CONTRACT} == CONTRACT


def test_gateway_url_follows_port_unless_set():
    assert load_settings({"PORT": "9000"}).gateway_url == "http://127.0.0.1:9000"
    assert (
        load_settings({"PORT": "9000", "GATEWAY_URL": "https://shop.example"}).gateway_url
        == "https://shop.example"
    )


def test_values_are_coerced():
    settings = load_settings({"HOLD_SECONDS": " 5 ", "LATE_PAYMENT_POLICY": "refund", "PSP_PORT": "9999"})
    assert (settings.hold_seconds, settings.late_payment_policy, settings.psp_port) == (5, "refund", 9999)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("HOLD_SECONDS", "0"),
        ("HOLD_SECONDS", "soon"),
        ("LATE_PAYMENT_POLICY", "keep"),
        ("DATABASE_URL", "postgres://x/y"),
        ("BROKER_URL", "redis://x"),
        ("REDIS_URL", "localhost:6379"),
        ("PSP_URL", "ftp://x"),
        ("SMTP_URL", "http://x"),
        ("MAIL_FROM", "nobody"),
        ("ADMIN_TOKEN", "short"),
        ("RECONCILE_EVERY_SECONDS", "-1"),
        ("PSP_PROVIDER", "paypal"),
        ("STRIPE_API_KEY", "pk_test_publishable"),
        ("STRIPE_WEBHOOK_SECRET", "short"),
        ("STRIPE_API_BASE", "api.stripe.com"),
    ],
)
def test_wrong_value_names_the_variable(name, value):
    with pytest.raises(SettingsError) as error:
        load_settings({name: value})
    assert str(error.value).startswith(f"{name}: ") and "\n" not in str(error.value)


def test_every_field_is_parsed():
    from config.settings import _PARSERS

    assert {field.name.upper() for field in fields(Settings)} == set(_PARSERS)


@pytest.mark.parametrize(
    "module",
    ["models.migrate", "models.seed", "schedules.main", "sandbox.psp", "sandbox.mail", "gateway.main"],
)
def test_process_stops_at_start_with_one_line(module):
    result = subprocess.run(
        [sys.executable, "-c", f"import sys, {module} as m; sys.exit(m.main())"],
        env={"HOLD_SECONDS": "soon", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: HOLD_SECONDS: expected a whole number, got 'soon'"]


def test_worker_stops_at_start_with_one_line():
    result = subprocess.run(
        [sys.executable, "-c", "import workers.broker"],
        env={"BROKER_URL": "nowhere", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: BROKER_URL: expected a URL starting with amqp://, amqps:// and naming a host, got 'nowhere'"
    ]


# -- the token signing secret ------------------------------------------------------------------


def one_line_naming_token_secret(error: pytest.ExceptionInfo) -> bool:
    message = str(error.value)
    return message.startswith("TOKEN_SECRET: ") and "\n" not in message


def test_the_dev_secret_is_a_development_default():
    settings = load_settings({})

    assert settings.token_secret == DEV_TOKEN_SECRET
    assert is_development(settings) and uses_dev_token_secret(settings)


@pytest.mark.parametrize(
    "environ",
    [
        {"ENV": "production"},
        {"ENV": "Production"},
        {"ENV": "PRODUCTION", "TOKEN_SECRET": ""},
        {"ADMIN_TOKEN": "a-custom-admin-token"},
        {"PSP_WEBHOOK_SECRET": "a-custom-webhook-secret"},
    ],
    ids=[
        "production",
        "Production",
        "PRODUCTION-empty-secret",
        "custom-admin-token",
        "custom-webhook-secret",
    ],
)
def test_outside_development_the_dev_secret_is_refused_in_one_line(environ):
    with pytest.raises(SettingsError) as refused:
        load_settings(environ)

    assert one_line_naming_token_secret(refused)


@pytest.mark.parametrize(
    "environ",
    [
        {"ENV": "production"},
        {"ENV": "Production"},
        {"ADMIN_TOKEN": "a-custom-admin-token"},
        {
            "ENV": "production",
            "ADMIN_TOKEN": "a-custom-admin-token",
            "PSP_WEBHOOK_SECRET": "a-custom-webhook-secret",
        },
    ],
)
def test_a_strong_secret_is_accepted_outside_development(environ):
    settings = load_settings({**environ, "TOKEN_SECRET": STRONG_SECRET})

    assert settings.token_secret == STRONG_SECRET
    assert not is_development(settings) and not uses_dev_token_secret(settings)


def test_env_is_read_case_insensitively():
    assert load_settings({"ENV": "Production", "TOKEN_SECRET": STRONG_SECRET}).env == "production"
    assert load_settings({"ENV": "DEVELOPMENT"}).env == "development"


@pytest.mark.parametrize("environ", [{}, {"ENV": "production"}])
def test_a_short_secret_is_refused_in_one_line(environ):
    with pytest.raises(SettingsError) as refused:
        load_settings({**environ, "TOKEN_SECRET": "x" * 31})

    assert one_line_naming_token_secret(refused)
    assert "x" * 31 not in str(refused.value)  # a secret is never printed back


def test_web_process_stops_at_start_with_one_line_when_admin_token_is_custom_and_token_secret_unset():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, gateway.main as m; sys.exit(m.main())"],
        env={"ADMIN_TOKEN": "a-custom-admin-token", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: TOKEN_SECRET: "), result.stderr


@pytest.mark.parametrize("missing", ["STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"])
def test_stripe_needs_its_key_and_webhook_secret(missing):
    environ = {
        "PSP_PROVIDER": "stripe",
        "STRIPE_API_KEY": "sk_test_x",
        "STRIPE_WEBHOOK_SECRET": "whsec_12345678",
    }
    del environ[missing]
    with pytest.raises(SettingsError, match=f"^{missing}: required when PSP_PROVIDER=stripe$"):
        load_settings(environ)


def test_stripe_settings_are_read():
    settings = load_settings(
        {
            "PSP_PROVIDER": "Stripe",
            "STRIPE_API_KEY": "sk_test_abc",
            "STRIPE_WEBHOOK_SECRET": "whsec_12345678",
            "STRIPE_API_BASE": "http://127.0.0.1:8090/stripe",
        }
    )
    assert (settings.psp_provider, settings.stripe_api_key, settings.stripe_api_base) == (
        "stripe",
        "sk_test_abc",
        "http://127.0.0.1:8090/stripe",
    )
