"""Migration 0004 on a database holding accounts: emails put in canonical form, compared exactly after."""

from __future__ import annotations

import asyncio
import unicodedata
from contextlib import contextmanager

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from models.db import create_engine
from models.migrate import alembic_config, create_database
from tests.support.isolation import MYSQL_SERVER_URL, run_name


@contextmanager
def database_at(revision: str):
    """A fresh database migrated to ``revision``, dropped afterwards."""
    name = run_name()
    url = f"{MYSQL_SERVER_URL}/{name}"
    asyncio.run(create_database(url))
    try:
        command.upgrade(alembic_config(url), revision)
        yield url
    finally:
        asyncio.run(sql(f"{MYSQL_SERVER_URL}/", f"DROP DATABASE IF EXISTS `{name}`"))


async def sql(url: str, statement: str, params: dict | list | None = None) -> list[tuple]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


def insert_accounts(url: str, emails: dict[str, str]) -> None:
    asyncio.run(
        sql(
            url,
            "INSERT INTO accounts (id, email, name, password_hash, created_at, updated_at) "
            "VALUES (:id, :email, 'Test', 'x', NOW(6), NOW(6))",
            [{"id": account_id, "email": email} for account_id, email in emails.items()],
        )
    )


def stored(url: str) -> tuple[dict[str, str], str, str]:
    """(emails by account id, the email column's collation, the schema's revision)."""
    emails = dict(asyncio.run(sql(url, "SELECT id, email FROM accounts")))
    ((collation,),) = asyncio.run(
        sql(
            url,
            "SELECT collation_name FROM information_schema.columns WHERE "
            "table_schema = DATABASE() AND table_name = 'accounts' "
            "AND column_name = 'email'",
        )
    )
    ((revision,),) = asyncio.run(sql(url, "SELECT version_num FROM alembic_version"))
    return emails, collation, revision


def test_upgrade_puts_emails_in_canonical_form_and_then_tells_accents_apart():
    decomposed = unicodedata.normalize("NFD", "Zoë.M@Example.com")
    with database_at("0003") as url:
        insert_accounts(url, {"a" * 32: decomposed, "b" * 32: "ada@example.com"})

        command.upgrade(alembic_config(url), "head")

        emails, collation, _ = stored(url)
        assert emails == {
            "a" * 32: unicodedata.normalize("NFC", "zoë.m@example.com"),
            "b" * 32: "ada@example.com",
        }
        assert collation == "utf8mb4_bin"
        # zoe.m@ is another address now; the same address again is still refused.
        insert_accounts(url, {"c" * 32: "zoe.m@example.com"})
        with pytest.raises(IntegrityError):
            insert_accounts(url, {"d" * 32: "ada@example.com"})


def test_upgrade_refuses_accounts_that_would_share_an_email_and_changes_nothing():
    with database_at("0003") as url:
        # Rows the API never wrote: the old collation told a leading space apart, the canonical form does not.
        insert_accounts(url, {"a" * 32: "ada@example.com", "b" * 32: " ada@example.com"})

        with pytest.raises(RuntimeError) as refused:
            command.upgrade(alembic_config(url), "head")

        assert "a" * 32 in str(refused.value) and "b" * 32 in str(refused.value)
        emails, collation, revision = stored(url)
        assert emails == {"a" * 32: "ada@example.com", "b" * 32: " ada@example.com"}
        assert (collation, revision) == ("utf8mb4_unicode_ci", "0003")


def test_downgrade_restores_the_old_collation():
    with database_at("head") as url:
        command.downgrade(alembic_config(url), "0003")

        assert stored(url)[1:] == ("utf8mb4_unicode_ci", "0003")
