"""Card numbers (PANs) must never be written to the database: two rules to keep them out and find them.

Card numbers have 12 to 19 digits and are written in groups: ``4242 4242 4242 4242``,
``4242-4242-4242-4242``, with dots, no-break or thin spaces, or typed in fullwidth digits. Both
rules first put the text in Unicode NFKC (fullwidth and other compatibility digits become ASCII
digits, every kind of space becomes a plain one), then read *digit chains*: digits separated by
any run of characters that are neither letters nor digits (spaces, dashes, dots, slashes,
underscores, zero-width characters...). A letter ends a chain.

- :func:`could_be_card_number` is the rule for input, where a payment-provider token is expected
  (``pm_card_ok``, ``tok_1234``, Stripe's ``pm_1N3x...``). A chain of 12 or more digits anywhere
  in the value refuses it, whether or not its Luhn check digit is right: a mistyped card number is
  card data too, and no provider token holds such a chain, so refusing costs nothing.
- :func:`probably_holds_card_number` is the rule for reading data already stored, where ids,
  timestamps, barcodes and amounts are common and a broad rule would cry wolf. It reports a chain
  of 13 to 19 digits that stands on its own (no letter right before or after it) and passes the
  Luhn check, which is what card numbers of every major brand are. It misses what the input rule
  exists to refuse anyway: 12-digit numbers, numbers with a wrong check digit, numbers glued to
  further digits.

:func:`find_stored_card_numbers` applies the second rule to every text column of every table of
the connected database, and says where (table, column, row) without ever returning the value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

#: Digits joined by any run of characters that are neither letters nor digits.
_DIGIT_CHAIN = re.compile(r"\d(?:[\W_]*\d)*")
#: The fewest digits of any card number; input with a chain this long is refused.
MIN_INPUT_DIGITS = 12
#: Card numbers of the major brands (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay).
STORED_DIGITS = range(13, 20)
#: Column types that hold text (JSON columns are LONGTEXT in MariaDB).
_TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")


def _digit_chains(value: str):
    """The digit chains of ``value``: (the value in NFKC, the chain's ASCII digits, its start, its end)."""
    normalised = unicodedata.normalize("NFKC", value)
    for match in _DIGIT_CHAIN.finditer(normalised):
        digits = "".join(str(unicodedata.decimal(char)) for char in match.group() if char.isdecimal())
        yield normalised, digits, match.start(), match.end()


def could_be_card_number(value: str) -> bool:
    """True when ``value`` holds 12 or more digits in one chain: the input rule (Luhn not consulted)."""
    return any(len(digits) >= MIN_INPUT_DIGITS for _, digits, _, _ in _digit_chains(value))


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits, which every card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def probably_holds_card_number(value: str) -> bool:
    """True when ``value`` holds a stand-alone chain of 13-19 digits passing Luhn: the stored-data rule."""
    for normalised, digits, start, end in _digit_chains(value):
        if len(digits) not in STORED_DIGITS or not luhn_valid(digits):
            continue
        before = normalised[start - 1] if start else ""
        after = normalised[end] if end < len(normalised) else ""
        # A chain touching a letter is part of a word (a hex id, a timestamp's "T...Z"), not a number.
        if not before.isalpha() and not after.isalpha():
            return True
    return False


@dataclass(frozen=True)
class StoredCardNumber:
    """Where a value that looks like a card number sits; never the value itself."""

    table: str
    column: str
    row: dict[str, object]


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


async def text_columns(connection: AsyncConnection) -> dict[str, list[str]]:
    """Every text column of every table of the connected database, by table."""
    rows = await connection.execute(
        text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t "
            "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' AND c.data_type IN :types "
            "ORDER BY c.table_name, c.ordinal_position"
        ).bindparams(bindparam("types", expanding=True)),
        {"types": list(_TEXT_TYPES)},
    )
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


async def _primary_key(connection: AsyncConnection, table: str) -> list[str]:
    rows = await connection.execute(
        text(
            "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = DATABASE() "
            "AND table_name = :table AND constraint_name = 'PRIMARY' ORDER BY ordinal_position"
        ),
        {"table": table},
    )
    return [name for (name,) in rows]


async def find_stored_card_numbers(connection: AsyncConnection) -> list[StoredCardNumber]:
    """Every stored value, in any text column of any table, that probably holds a card number.

    Reads each table once, in full (a scan, as any card-data discovery is): run it against a
    replica or in a quiet hour on a large database. Each finding names the table, the column and
    the row's primary key, so the value can be looked at and erased; the value is not returned.
    """
    findings: list[StoredCardNumber] = []
    for table, columns in (await text_columns(connection)).items():
        key = await _primary_key(connection, table)
        selected = ", ".join(_quoted(name) for name in [*key, *columns])
        # Only values long enough to hold 13 digits can match; the server drops the rest.
        long_enough = " OR ".join(
            f"CHAR_LENGTH({_quoted(name)}) >= {STORED_DIGITS.start}" for name in columns
        )
        result = await connection.stream(text(f"SELECT {selected} FROM {_quoted(table)} WHERE {long_enough}"))
        async for row in result:
            values = row._mapping
            for column in columns:
                value = values[column]
                if isinstance(value, str) and probably_holds_card_number(value):
                    findings.append(StoredCardNumber(table, column, {name: values[name] for name in key}))
    return findings
