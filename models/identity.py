"""How an account's email is compared: one normalisation, used by the database and the throttle.

An email is trimmed, lower-cased and put in Unicode NFC, then compared byte for byte (the
column has a binary collation). ``zoe@`` and ``zoë@`` are different people; ``Zoë@`` typed with a
combining diaeresis and ``zoë@`` typed with the precomposed letter are the same person.
"""

from __future__ import annotations

import unicodedata


def normalize_email(raw: str) -> str:
    """The canonical form of an email address: trimmed, lower-cased, Unicode NFC."""
    return unicodedata.normalize("NFC", raw.strip().lower())
