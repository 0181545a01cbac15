"""The `release` command: create the database if needed and bring its schema up to date."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from config import settings_or_exit

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration built in code, so no alembic.ini has to travel with the app."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def create_database(database_url: str) -> None:
    """Create the database named in ``database_url`` when it does not exist yet."""
    url = make_url(database_url)
    name = url.database
    engine = create_async_engine(url.set(database=""), connect_args={"connect_timeout": 5})
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            )
    finally:
        await engine.dispose()


def migrate(database_url: str) -> None:
    """Create the database if missing and upgrade it to the newest revision."""
    asyncio.run(create_database(database_url))
    command.upgrade(alembic_config(database_url), "head")


def main(argv: list[str] | None = None) -> int:
    """Console entry point of the `release` process."""
    parser = argparse.ArgumentParser(prog="orders-migrate", description=__doc__)
    parser.parse_args(argv)
    settings = settings_or_exit()
    migrate(settings.database_url)
    print("database schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
