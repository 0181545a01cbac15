"""``orders-admin``: the operator's command line (entry point ``ops.cli:main``).

Settings come from the environment like every process of the fleet (``config.settings``); logs
go to stderr as the other processes write them, while stdout carries only the command's own
output. Exit codes: 0 done, 1 the operation failed or found problems (see each command's help),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import dramatiq.errors
import pika.exceptions
import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config import Settings, settings_or_exit
from config.logging import configure_logging
from messaging.rabbitmq import QUEUE_TYPES
from ops.common import OpsError, database, dump_json, redact_url

PROG = "orders-admin"
T = TypeVar("T")

log = structlog.get_logger(__name__)

#: dramatiq 2.1 renamed ConnectionError (kept as a deprecated alias) to BrokerConnectionError.
BrokerConnectionError = (
    getattr(dramatiq.errors, "BrokerConnectionError", None) or dramatiq.errors.ConnectionError
)

#: MySQL client errors meaning the server could not be reached at all.
_UNREACHABLE = {2002, 2003, 2005, 2006, 2013}
_HINTS = {1146: " (is the schema up to date? run orders-migrate)", 1049: " (run orders-migrate to create it)"}


def _count(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {raw!r}")
        return value

    return parse


def _epilog(text: str) -> str:
    return textwrap.dedent(text).strip()


def _para(text: str) -> str:
    return textwrap.fill(text, width=96)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (exposed for tests and documentation)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=formatter,
        description=_para(
            "Operator tool of the order fleet: inspect orders, look at and replay dead-lettered "
            "messages, and run reconciliation, archiving and the stuck-order sweep by hand."
        ),
        epilog=_epilog("""
            Settings come from the environment (DATABASE_URL, BROKER_URL, ARCHIVE_AFTER_SECONDS,
            LOG_LEVEL, ...); logs go to stderr, the command's output to stdout.

            exit codes: 0 done; 1 the operation failed or found problems (see each command);
                        2 usage or configuration error.
        """),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    order = commands.add_parser(
        "order",
        formatter_class=formatter,
        help="show one order with everything around it",
        description=_para(
            "Show one order (hot or archived): status and reason, totals, history, payments, "
            "stock holds, its outbox messages and customer notifications."
        ),
        epilog=_epilog("""
            exit codes: 0 shown; 1 no such order, or the database cannot be reached; 2 usage/config error.
        """),
    )
    order.add_argument("order_id", metavar="ORDER_ID", help="the order's id (32 hex digits)")
    order.add_argument("--json", action="store_true", help="print one JSON document instead of the report")
    order.add_argument(
        "--provider",
        action="store_true",
        help="also ask the payment provider (PSP_PROVIDER) about each payment and refund it knows",
    )
    order.set_defaults(handler=cmd_order)

    dead = commands.add_parser(
        "dead-letters",
        formatter_class=formatter,
        help="list or replay messages dramatiq gave up on",
        description=_para(
            "Messages whose retries ran out are in the <queue>.XQ queues (in the vhost of "
            "BROKER_URL), kept for 7 days. `list` peeks at them without taking them; `replay` "
            "sends them back to their queue with fresh retries."
        ),
        epilog=_epilog("""
            Without --queue every step queue of messaging/queues.py is looked at.
            exit codes: 0 done; 1 RabbitMQ cannot be reached or something could not be replayed;
                        2 usage/config error.
        """),
    )
    dead_commands = dead.add_subparsers(dest="dead_command", metavar="ACTION", required=True)

    listing = dead_commands.add_parser(
        "list",
        formatter_class=formatter,
        help="show dead-lettered messages (they stay where they are)",
        description=_para(
            "Show the dead-lettered messages of each queue: message id, actor and arguments (the "
            "order_id), retries, when and why RabbitMQ dead-lettered it, and the last error "
            "dramatiq recorded. Messages are peeked (taken unacknowledged, then requeued in place)."
        ),
        epilog=_epilog("""
            exit codes: 0 listed (also when messages were found); 1 RabbitMQ cannot be reached or the named
                        queue has no dead-letter queue; 2 usage/config error.
        """),
    )
    listing.add_argument(
        "--queue", metavar="NAME", help="only this queue (e.g. reserve; reserve.XQ works too)"
    )
    listing.add_argument(
        "--limit",
        type=_count(1),
        default=50,
        metavar="N",
        help="show at most N messages per queue (default: 50)",
    )
    listing.add_argument("--traceback", action="store_true", help="print the full stored traceback of each")
    listing.add_argument("--json", action="store_true", help="print one JSON document instead")
    listing.set_defaults(handler=cmd_dead_letters_list)

    replay = dead_commands.add_parser(
        "replay",
        formatter_class=formatter,
        help="send dead-lettered messages back to their queue",
        description=_para(
            "Publish the chosen messages again to their original queue (same message id and "
            "arguments, retry count cleared, persistent, confirmed by RabbitMQ), then remove "
            "them from the dead-letter queue. Steps are idempotent, so a replayed message whose "
            "work was done meanwhile changes nothing."
        ),
        epilog=_epilog("""
            exit codes: 0 replayed (or nothing there to replay with --all); 1 a --message-id was not found,
                        an undecodable message was left in place, or RabbitMQ failed;
                        2 nothing chosen (pass --message-id or --all) or usage/config error.
        """),
    )
    replay.add_argument("--queue", metavar="NAME", help="only this queue (default: every step queue)")
    chosen = replay.add_mutually_exclusive_group()
    chosen.add_argument(
        "--message-id",
        action="append",
        metavar="ID",
        dest="message_ids",
        help="replay this message (repeatable); ids are shown by `dead-letters list`",
    )
    chosen.add_argument("--all", action="store_true", help="replay every dead-lettered message")
    replay.add_argument("--dry-run", action="store_true", help="only show what would be replayed")
    replay.set_defaults(handler=cmd_dead_letters_replay)

    reconcile = commands.add_parser(
        "reconcile",
        formatter_class=formatter,
        help="check (and repair) the stock ledger of every SKU",
        description=_para(
            "Check received = available + held + committed for every SKU in one transaction and "
            "store a report. By default a dry run that changes nothing; --repair sets `available` "
            "to what the holds and receipts say."
        ),
        epilog=_epilog("""
            exit codes: 0 no drift, or every drift repaired; 1 drift found on a dry run, drift that could not
                        be repaired, or the database failed; 2 usage/config error.
        """),
    )
    reconcile.add_argument("--repair", action="store_true", help="fix the drift found (default: dry run)")
    reconcile.set_defaults(handler=cmd_reconcile)

    archive = commands.add_parser(
        "archive",
        formatter_class=formatter,
        help="move finished orders to the archive tables now",
        description=_para(
            "Move DELIVERED, CANCELLED and REJECTED orders last changed more than "
            "--older-than-seconds ago into the *_archive tables, one batch per transaction. "
            "Archived orders stay readable (GET /orders/{id}, `orders-admin order`)."
        ),
        epilog=_epilog("""
            exit codes: 0 done (also when nothing was due); 1 the database failed; 2 usage/config error.
        """),
    )
    archive.add_argument(
        "--older-than-seconds",
        type=_count(0),
        metavar="S",
        help="age of the last change (default: ARCHIVE_AFTER_SECONDS)",
    )
    archive.add_argument(
        "--batch-size", type=_count(1), default=200, metavar="N", help="orders per transaction (default: 200)"
    )
    archive.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is drawn only when stderr is a terminal)",
    )
    archive.set_defaults(handler=cmd_archive)

    redrive = commands.add_parser(
        "redrive",
        formatter_class=formatter,
        help="run the stuck-order sweep now",
        description=_para(
            "Run the scheduler's backstop sweep now: enqueue again `expire` for holds past their "
            "expiry, `reserve` for orders stuck in PENDING, `pay` for payments never requested and "
            "`refund` for refunds never requested. Every step is idempotent."
        ),
        epilog=_epilog("""
            exit codes: 0 done (counts printed per case); 1 the database or RabbitMQ failed;
                        2 usage/config error.
        """),
    )
    redrive.set_defaults(handler=cmd_redrive)

    queues = commands.add_parser(
        "queues",
        formatter_class=formatter,
        help="move the fleet's RabbitMQ queues to another queue type",
        description=_para(
            "RabbitMQ cannot change a queue's type in place. `migrate` moves every message of every "
            "fleet queue (the step queues, their .DQ delayed messages and .XQ dead letters) of the "
            "vhost of BROKER_URL through a holding queue <queue>.migrating into a queue of the new "
            "type, keeping order, bodies and properties."
        ),
        epilog=_epilog("""
            Stop the workers first; gateways and schedulers either stopped or already restarted with
            the new QUEUE_TYPE (the outbox keeps their messages until the queues exist). Safe to run
            again: an interrupted run is finished by the next one. See docs/operations.md.
            exit codes: those of `queues migrate`.
        """),
    )
    queue_commands = queues.add_subparsers(dest="queues_command", metavar="ACTION", required=True)
    migrate = queue_commands.add_parser(
        "migrate",
        formatter_class=formatter,
        help="move every fleet queue to --to's type",
        description=_para(
            "Move every fleet queue of the vhost to the queue type --to (see `queues --help`), one "
            "queue at a time, then start the fleet with QUEUE_TYPE set to it."
        ),
        epilog=_epilog("""
            exit codes: 0 every queue is of the type (also when nothing had to move); 1 a queue is being
                        consumed, could not be told apart, or RabbitMQ failed; 2 usage/config error.
        """),
    )
    migrate.add_argument("--to", required=True, choices=QUEUE_TYPES, help="the queue type to move to")
    migrate.add_argument("--dry-run", action="store_true", help="only show each queue's type and messages")
    migrate.set_defaults(handler=cmd_queues_migrate)
    return parser


def _with_database(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    async def run() -> T:
        async with database(settings.database_url) as sessionmaker:
            return await work(sessionmaker)

    return asyncio.run(run())


def cmd_order(settings: Settings, args: argparse.Namespace) -> int:
    from ops.order_info import order_document, render_order

    async def shown(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
        document = await order_document(sessionmaker, args.order_id)
        if args.provider:
            from ops.provider_view import provider_records
            from providers.payments.choice import payment_provider

            provider = payment_provider(settings)
            try:
                document["at_provider"] = await provider_records(provider, document)
            finally:
                await provider.close()
        return document

    document = _with_database(settings, shown)
    print(dump_json(document) if args.json else render_order(document))
    return 0


def cmd_dead_letters_list(settings: Settings, args: argparse.Namespace) -> int:
    from ops.dead_letters import DeadLetters, render_listing

    dead_letters = DeadLetters(settings)
    try:
        dead_letters.connect()
        listings = dead_letters.listing(args.queue, args.limit)
    finally:
        dead_letters.close()
    if args.json:
        print(dump_json({"vhost": dead_letters.vhost, "queues": [listing.as_dict() for listing in listings]}))
    else:
        print(render_listing(listings, dead_letters.vhost, verbose=args.traceback))
    return 0


def cmd_dead_letters_replay(settings: Settings, args: argparse.Namespace) -> int:
    from ops.dead_letters import DeadLetters

    verb = "would replay" if args.dry_run else "replayed"

    def report(letter: Any, target: str) -> None:
        print(f"{verb} {letter.describe()}  {letter.dead_letter_queue} -> {target}", flush=True)

    dead_letters = DeadLetters(settings)
    try:
        dead_letters.connect()
        result = dead_letters.replay(
            args.queue,
            message_ids=args.message_ids,
            everything=args.all,
            dry_run=args.dry_run,
            on_replay=report,
        )
    finally:
        dead_letters.close()
    for letter in result.skipped:
        print(f"left in place: {letter.describe()} in {letter.dead_letter_queue} (cannot be replayed)")
    count = len(result.replayed)
    print(
        f"dry run: {count} message(s) would be replayed; nothing moved"
        if args.dry_run
        else f"{count} message(s) replayed"
        if count
        else "nothing to replay"
    )
    if result.missing:
        where = args.queue or "any step queue"
        _error(
            f"no dead-lettered message {', '.join(result.missing)} in {where}"
            f" (vhost {dead_letters.vhost!r}); see `{PROG} dead-letters list`"
        )
        return 1
    return 1 if result.skipped else 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from ops.maintenance import render_reconcile, run_reconcile

    outcome = _with_database(settings, lambda sessionmaker: run_reconcile(sessionmaker, args.repair))
    print(render_reconcile(outcome))
    return 1 if outcome.remaining else 0


def cmd_archive(settings: Settings, args: argparse.Namespace) -> int:
    from ops.maintenance import run_archive

    older_than = args.older_than_seconds
    if older_than is None:
        older_than = settings.archive_after_seconds
    progress = not args.no_progress and sys.stderr.isatty()
    due, moved = _with_database(
        settings, lambda sessionmaker: run_archive(sessionmaker, older_than, args.batch_size, progress)
    )
    if not due:
        print(f"nothing to archive: no order finished more than {older_than} s ago")
    else:
        print(f"archived {moved} order(s) finished more than {older_than} s ago")
    return 0


def cmd_redrive(settings: Settings, args: argparse.Namespace) -> int:
    from ops.maintenance import render_redrive, run_redrive

    report = _with_database(
        settings,
        lambda sessionmaker: run_redrive(sessionmaker, settings),
    )
    print(render_redrive(report))
    return 0


def cmd_queues_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from ops.queue_migration import QueueMigration

    migration = QueueMigration(settings, args.to)
    try:
        if args.dry_run:
            moves = migration.plan()
        else:
            moves = migration.run(lambda move: print(move.describe(args.to, dry_run=False), flush=True))
    finally:
        migration.close()
    if args.dry_run:
        for move in moves:
            print(move.describe(args.to, dry_run=True))
        print(f"dry run: nothing moved in vhost {migration.vhost!r}")
        return 0
    moved = sum(move.messages for move in moves)
    print(
        f"every fleet queue of vhost {migration.vhost!r} is {args.to} ({moved} message(s) moved);"
        f" start the fleet with QUEUE_TYPE={args.to}"
    )
    return 0


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def _amqp_reason(error: BaseException) -> str:
    """The innermost useful words of a pika/dramatiq connection error (they nest several deep)."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if isinstance(
            current, (pika.exceptions.ConnectionClosedByBroker, pika.exceptions.ChannelClosedByBroker)
        ):
            return f"{current.reply_text} ({current.reply_code})"
        # pika's connector errors keep the cause in ``.exception``, the others in ``args``.
        inner = getattr(current, "exception", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        if inner is None:
            text = str(current).strip()
            return text or type(current).__name__
        current = inner
    return type(error).__name__


def _database_error(error: DBAPIError, url: str) -> str:
    orig = error.orig
    args: tuple[Any, ...] = getattr(orig, "args", ())
    code: int | None = args[0] if args and isinstance(args[0], int) else None
    text = str(args[1]) if code is not None and len(args) > 1 else str(orig or error).splitlines()[0]
    if code is None:
        return f"database error at {redact_url(url)}: {text}"
    if code in _UNREACHABLE:
        return f"cannot reach the database at {redact_url(url)}: {text}"
    return f"database error at {redact_url(url)}: {text}{_HINTS.get(code, '')}"


def main(argv: list[str] | None = None) -> int:
    """Console entry point: ``orders-admin COMMAND ...``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.handler is cmd_dead_letters_replay and not (args.message_ids or args.all):
        _error(
            f"nothing chosen to replay: pass --message-id ID (repeatable) or --all;"
            f" `{PROG} dead-letters list` shows the ids"
        )
        return 2
    settings = settings_or_exit()
    configure_logging(settings, "admin")
    if settings.log_level != "DEBUG":
        # Every RabbitMQ failure reaches the operator as one `error:` line; pika's own account of
        # it (errors with tracebacks while connecting) would only bury that line.
        logging.getLogger("pika").setLevel(logging.CRITICAL)
    try:
        return args.handler(settings, args)
    except OpsError as error:
        _error(str(error))
        return error.exit_code
    except (pika.exceptions.AMQPConnectionError, BrokerConnectionError) as error:
        _error(f"cannot reach RabbitMQ at {redact_url(settings.broker_url)}: {_amqp_reason(error)}")
        return 1
    except pika.exceptions.AMQPError as error:
        _error(f"RabbitMQ at {redact_url(settings.broker_url)} refused: {_amqp_reason(error)}")
        return 1
    except DBAPIError as error:
        _error(_database_error(error, settings.database_url))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
