"""One settings loader: every variable the fleet reads, with defaults and validation.

Processes call :func:`load_settings` once at start and pass the result down; nothing else
reads ``os.environ``. A wrong value raises :class:`SettingsError` whose message is one
line naming the variable, which the entry points print before exiting.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields, replace
from typing import Callable, Mapping, NoReturn
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A variable of the environment has a value the fleet cannot run with."""


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name}: must be greater than 0, got {raw!r}")
    return value


def _port(name: str, raw: str) -> int:
    value = _positive_int(name, raw)
    if value > 65535:
        raise SettingsError(f"{name}: not a TCP port (1-65535), got {raw!r}")
    return value


def _url(*schemes: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not parts.hostname:
            allowed = ", ".join(f"{s}://" for s in schemes)
            raise SettingsError(f"{name}: expected a URL starting with {allowed} and naming a host, got {raw!r}")
        return raw.rstrip("/") if parts.scheme.startswith("http") else raw

    return parse


def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in options:
            raise SettingsError(f"{name}: expected one of {', '.join(options)}, got {raw!r}")
        return raw

    return parse


def _secret(name: str, raw: str, minimum: int = 8) -> str:
    if len(raw) < minimum:
        raise SettingsError(f"{name}: must be at least {minimum} characters long")
    return raw


def _signing_key(name: str, raw: str) -> str:
    # HS256 keys shorter than the hash output are weak (RFC 7518 section 3.2).
    return _secret(name, raw, minimum=32)


def _email(name: str, raw: str) -> str:
    if "@" not in raw or raw.startswith("@") or raw.endswith("@"):
        raise SettingsError(f"{name}: expected an email address, got {raw!r}")
    return raw


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise SettingsError(f"{name}: must not be empty")
    return raw


@dataclass(frozen=True)
class Settings:
    """The fleet's configuration; field names are the variables' names in lower case."""

    port: int = 8080
    database_url: str = "mysql+aiomysql://root@127.0.0.1:3306/orders"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    redis_url: str = "redis://127.0.0.1:6379/0"
    admin_token: str = "dev-admin-token"
    hold_seconds: int = 900
    late_payment_policy: str = "reinstate"
    psp_url: str = "http://127.0.0.1:8090"
    psp_port: int = 8090
    psp_webhook_secret: str = "dev-webhook-secret"
    gateway_url: str = ""  # default derived from PORT in load_settings
    smtp_url: str = "smtp://127.0.0.1:8025"
    smtp_port: int = 8025
    mail_from: str = "orders@example.com"
    events_exchange: str = "orders.events"
    archive_after_seconds: int = 2592000
    reconcile_every_seconds: int = 300
    # Beyond the contract: knobs an operator may need, all with safe defaults.
    token_secret: str = "dev-token-secret-change-me-in-production"
    token_ttl_seconds: int = 3600
    log_format: str = "json"
    log_level: str = "INFO"
    mail_dir: str = "var/mail"
    mail_web_port: int = 8026
    outbox_relay_after_seconds: int = 5
    max_body_bytes: int = 65536
    # Orders one customer may have waiting for payment at once (stock held by bots is stock lost).
    max_unpaid_orders: int = 5
    # Token requests allowed per minute, per account and per client address.
    auth_attempts_per_minute: int = 10


_PARSERS: dict[str, Callable[[str, str], object]] = {
    "PORT": _port,
    "DATABASE_URL": _url("mysql+aiomysql", "mysql+asyncmy", "mariadb+aiomysql"),
    "BROKER_URL": _url("amqp", "amqps"),
    "REDIS_URL": _url("redis", "rediss"),
    "ADMIN_TOKEN": _secret,
    "HOLD_SECONDS": _positive_int,
    "LATE_PAYMENT_POLICY": _choice("reinstate", "refund"),
    "PSP_URL": _url("http", "https"),
    "PSP_PORT": _port,
    "PSP_WEBHOOK_SECRET": _secret,
    "GATEWAY_URL": _url("http", "https"),
    "SMTP_URL": _url("smtp", "smtps"),
    "SMTP_PORT": _port,
    "MAIL_FROM": _email,
    "EVENTS_EXCHANGE": _text,
    "ARCHIVE_AFTER_SECONDS": _positive_int,
    "RECONCILE_EVERY_SECONDS": _positive_int,
    "TOKEN_SECRET": _signing_key,
    "TOKEN_TTL_SECONDS": _positive_int,
    "LOG_FORMAT": _choice("json", "console"),
    "LOG_LEVEL": _choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "MAIL_DIR": _text,
    "MAIL_WEB_PORT": _port,
    "OUTBOX_RELAY_AFTER_SECONDS": _positive_int,
    "MAX_BODY_BYTES": _positive_int,
    "MAX_UNPAID_ORDERS": _positive_int,
    "AUTH_ATTEMPTS_PER_MINUTE": _positive_int,
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable from ``environ`` (default: the process environment).

    Unset or empty variables take their defaults. Raises :class:`SettingsError` naming the
    first variable whose value is wrong.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(Settings):
        name = field.name.upper()
        raw = environ.get(name, "")
        if raw == "":
            continue
        values[field.name] = _PARSERS[name](name, raw.strip())
    settings = Settings(**values)
    if not settings.gateway_url:
        settings = replace(settings, gateway_url=f"http://127.0.0.1:{settings.port}")
    return settings



def settings_or_exit() -> Settings:
    """Settings for a process entry point: on a wrong value print ``error: <one line>`` and exit 2."""
    try:
        return load_settings()
    except SettingsError as error:
        _exit_with(str(error))


def _exit_with(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
