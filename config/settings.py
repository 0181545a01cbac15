"""One settings loader: every variable the fleet reads, with defaults and validation.

Processes call :func:`load_settings` once at start and pass the result down; nothing else
reads ``os.environ``. A wrong value raises :class:`SettingsError` whose message is one
line naming the variable, which the entry points print before exiting.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, NoReturn
from urllib.parse import urlsplit

from config.broker_nodes import BrokerUrlError, parse_broker_url


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
            raise SettingsError(
                f"{name}: expected a URL starting with {allowed} and naming a host, got {raw!r}"
            )
        return raw.rstrip("/") if parts.scheme.startswith("http") else raw

    return parse


def _broker_url(name: str, raw: str) -> str:
    """One RabbitMQ node, or the nodes of one cluster separated by ``;`` (see config.broker_nodes)."""
    try:
        return parse_broker_url(raw)
    except BrokerUrlError as error:
        raise SettingsError(f"{name}: {error}") from None


def _choice(*options: str) -> Callable[[str, str], str]:
    """One of ``options``, matched case-insensitively (``info`` is ``INFO``); returns its spelling."""
    canonical = {option.casefold(): option for option in options}

    def parse(name: str, raw: str) -> str:
        try:
            return canonical[raw.casefold()]
        except KeyError:
            raise SettingsError(f"{name}: expected one of {', '.join(options)}, got {raw!r}") from None

    return parse


def _networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128), normalised."""
    networks = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise SettingsError(
                f"{name}: expected comma-separated CIDRs such as 10.0.0.0/8, got {part.strip()!r}"
            ) from None
    return tuple(networks)


def _port_or_off(name: str, raw: str) -> int:
    """A TCP port, or 0 for "do not listen"."""
    return 0 if raw == "0" else _port(name, raw)


def _next_to(port: int, offset: int) -> int:
    """A port ``offset`` above ``port`` (below it near the top of the range): one fleet's own."""
    return port + offset if port + offset <= 65535 else port - offset


def _secret(name: str, raw: str, minimum: int = 8) -> str:
    if len(raw) < minimum:
        raise SettingsError(f"{name}: must be at least {minimum} characters long")
    return raw


def _signing_key(name: str, raw: str) -> str:
    # HS256 keys shorter than the hash output are weak (RFC 7518 section 3.2).
    return _secret(name, raw, minimum=32)


def _stripe_key(name: str, raw: str) -> str:
    # Secret (sk_) or restricted (rk_) keys only: a publishable key (pk_) cannot create payments.
    if not raw.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise SettingsError(f"{name}: expected a Stripe secret key (sk_test_... or sk_live_...)")
    return raw


def _email(name: str, raw: str) -> str:
    if "@" not in raw or raw.startswith("@") or raw.endswith("@"):
        raise SettingsError(f"{name}: expected an email address, got {raw!r}")
    return raw


def _text(name: str, raw: str) -> str:
    if not raw.strip():
        raise SettingsError(f"{name}: must not be empty")
    return raw


#: How far above the worker's PORT its metrics endpoint listens unless WORKER_METRICS_PORT says.
WORKER_METRICS_PORT_OFFSET = 11

#: The published development defaults: a process that runs with any of them is a development one.
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_WEBHOOK_SECRET = "dev-webhook-secret"
DEV_TOKEN_SECRET = "dev-token-secret-change-me-in-production"


@dataclass(frozen=True)
class Settings:
    """The fleet's configuration; field names are the variables' names in lower case."""

    port: int = 8080
    database_url: str = "mysql+aiomysql://root@127.0.0.1:3306/orders"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    redis_url: str = "redis://127.0.0.1:6379/0"
    admin_token: str = DEV_ADMIN_TOKEN
    hold_seconds: int = 900
    late_payment_policy: str = "reinstate"
    psp_url: str = "http://127.0.0.1:8090"
    psp_port: int = 8090
    psp_webhook_secret: str = DEV_WEBHOOK_SECRET
    gateway_url: str = ""  # default derived from PORT in load_settings
    smtp_url: str = "smtp://127.0.0.1:8025"
    smtp_port: int = 8025
    mail_from: str = "orders@example.com"
    events_exchange: str = "orders.events"
    archive_after_seconds: int = 2592000
    reconcile_every_seconds: int = 300
    token_secret: str = DEV_TOKEN_SECRET
    trusted_proxies: tuple[str, ...] = ()
    return_window_seconds: int = 2592000
    # Beyond the contract: knobs an operator may need, all with safe defaults.
    # development (the default) or production: production refuses the dev secrets.
    env: str = "development"
    token_ttl_seconds: int = 3600
    log_format: str = "json"
    log_level: str = "INFO"
    mail_dir: str = "var/mail"
    mail_web_port: int | None = None  # default SMTP_PORT + 1, derived in load_settings
    outbox_relay_after_seconds: int = 5
    max_body_bytes: int = 65536
    # Orders one customer may have waiting for payment at once (stock held by bots is stock lost).
    max_unpaid_orders: int = 5
    # Failed sign-ins that lock an account, and (over all accounts) a client address, until the
    # window that began with the first of them ends; successes never count.
    auth_max_failures_per_account: int = 10
    auth_max_failures_per_address: int = 100
    auth_failure_window_seconds: int = 900
    # The workers' Prometheus endpoint (dramatiq's dramatiq_prom_port): by default the worker's own
    # PORT + 11 (under honcho every process has a PORT of its own), so two fleets on one machine
    # never share it; 0 turns it off.
    worker_metrics_port: int | None = None
    # How long RabbitMQ keeps a message in a dead-letter queue (<queue>.XQ) before dropping it.
    dead_letter_ttl_seconds: int = 604800
    # The type of every durable queue the fleet declares: classic (one node) or quorum (replicated
    # over a cluster's nodes by Raft). See messaging/rabbitmq.py.
    queue_type: str = "classic"
    # Who takes the payments: the sandbox provider (dev and tests) or Stripe through its SDK.
    psp_provider: str = "sandbox"
    stripe_api_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    # The Stripe payment method type a redirect payment is confirmed with: one that sends the
    # customer to a page of its own (iDEAL, Bancontact, ...) and that the account has enabled.
    stripe_redirect_method: str = "ideal"


_PARSERS: dict[str, Callable[[str, str], object]] = {
    "PORT": _port,
    "DATABASE_URL": _url("mysql+aiomysql", "mysql+asyncmy", "mariadb+aiomysql"),
    "BROKER_URL": _broker_url,
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
    "TRUSTED_PROXIES": _networks,
    "RETURN_WINDOW_SECONDS": _positive_int,
    "ENV": _choice("development", "production"),
    "TOKEN_TTL_SECONDS": _positive_int,
    "LOG_FORMAT": _choice("json", "console"),
    "LOG_LEVEL": _choice("DEBUG", "INFO", "WARNING", "ERROR"),
    "MAIL_DIR": _text,
    "MAIL_WEB_PORT": _port,
    "WORKER_METRICS_PORT": _port_or_off,
    "DEAD_LETTER_TTL_SECONDS": _positive_int,
    "QUEUE_TYPE": _choice("classic", "quorum"),
    "PSP_PROVIDER": _choice("sandbox", "stripe"),
    "STRIPE_API_KEY": _stripe_key,
    "STRIPE_WEBHOOK_SECRET": _secret,
    "STRIPE_API_BASE": _url("http", "https"),
    "STRIPE_REDIRECT_METHOD": _text,
    "OUTBOX_RELAY_AFTER_SECONDS": _positive_int,
    "MAX_BODY_BYTES": _positive_int,
    "MAX_UNPAID_ORDERS": _positive_int,
    "AUTH_MAX_FAILURES_PER_ACCOUNT": _positive_int,
    "AUTH_MAX_FAILURES_PER_ADDRESS": _positive_int,
    "AUTH_FAILURE_WINDOW_SECONDS": _positive_int,
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable from ``environ`` (default: the process environment).

    Unset or empty variables take their defaults. Raises :class:`SettingsError` naming the
    first variable whose value is wrong.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        name = field.name.upper()
        raw = environ.get(name, "")
        if raw == "":
            continue
        values[field.name] = _PARSERS[name](name, raw.strip())
    settings = Settings(**values)
    if not settings.gateway_url:
        settings = replace(settings, gateway_url=f"http://127.0.0.1:{settings.port}")
    if settings.mail_web_port is None:
        settings = replace(settings, mail_web_port=_next_to(settings.smtp_port, 1))
    if settings.worker_metrics_port is None:
        settings = replace(settings, worker_metrics_port=_next_to(settings.port, WORKER_METRICS_PORT_OFFSET))
    if settings.psp_provider == "stripe":
        for name in ("stripe_api_key", "stripe_webhook_secret"):
            if not getattr(settings, name):
                raise SettingsError(f"{name.upper()}: required when PSP_PROVIDER=stripe")
    if settings.token_secret == DEV_TOKEN_SECRET and not is_development(settings):
        raise SettingsError(
            "TOKEN_SECRET: must be set to a secret of at least 32 characters outside development "
            "(ENV=production, or ADMIN_TOKEN/PSP_WEBHOOK_SECRET set to non-default values)"
        )
    return settings


def is_development(settings: Settings) -> bool:
    """True for a local fleet: ENV is not production and the admin and webhook secrets are the
    published defaults. Anything else is treated as a real deployment, which must not sign
    customers' tokens with a secret that anyone can read in the source."""
    return (
        settings.env != "production"
        and settings.admin_token == DEV_ADMIN_TOKEN
        and settings.psp_webhook_secret == DEV_WEBHOOK_SECRET
    )


def uses_dev_token_secret(settings: Settings) -> bool:
    """True when tokens are signed with the published development secret (worth a warning)."""
    return settings.token_secret == DEV_TOKEN_SECRET


def settings_or_exit() -> Settings:
    """Settings for a process entry point: on a wrong value print ``error: <one line>`` and exit 2."""
    try:
        return load_settings()
    except SettingsError as error:
        _exit_with(str(error))


def _exit_with(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
