"""account emails compared exactly: canonical form, binary collation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:00:00.000000

``accounts.email`` had the database's default collation (utf8mb4_unicode_ci), which ignores
accents: ``zoe@`` and ``zoë@`` were one account. Every stored email is put in its canonical form
(:func:`models.identity.normalize_email`: trimmed, lower-cased, Unicode NFC) and the column gets
the binary collation, so the unique index compares that form byte for byte.

When two accounts have the same canonical email (possible only for rows written outside the
API), the upgrade stops before changing anything and names them: which one keeps the address is
a decision for a person, not for a migration. The downgrade fails with a duplicate key when
accounts now exist whose emails differ only by accents.

No other column holds an account's identity: ``notifications.recipient`` is the address a mail
went to, never looked up or compared, so it keeps its collation.
"""

from collections import defaultdict

from alembic import op
import sqlalchemy as sa

from models.identity import normalize_email

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _canonical_changes(connection) -> dict[str, str]:
    """New emails of the accounts whose stored email is not canonical; raises on a collision."""
    owners: dict[str, list[str]] = defaultdict(list)
    changes: dict[str, str] = {}
    for account_id, email in connection.execute(sa.text("SELECT id, email FROM accounts")):
        canonical = normalize_email(email)
        owners[canonical].append(account_id)
        if canonical != email:
            changes[account_id] = canonical
    collisions = [ids for ids in owners.values() if len(ids) > 1]
    if collisions:
        listed = "; ".join(", ".join(sorted(ids)) for ids in collisions)
        raise RuntimeError(f"accounts with the same canonical email (rename or merge them, then migrate "
                           f"again): {listed}")
    return changes


def upgrade() -> None:
    connection = op.get_bind()
    changes = _canonical_changes(connection)
    # Binary first: under the old collation a canonical email could clash with another row's
    # accent-insensitively equal one; under the new one only exact equals clash, and there are none.
    op.alter_column('accounts', 'email', existing_type=sa.String(length=254),
                    type_=sa.String(length=254, collation='utf8mb4_bin'), existing_nullable=False)
    for account_id, email in changes.items():
        connection.execute(sa.text("UPDATE accounts SET email = :email WHERE id = :id"),
                           {"email": email, "id": account_id})


def downgrade() -> None:
    op.alter_column('accounts', 'email', existing_type=sa.String(length=254, collation='utf8mb4_bin'),
                    type_=sa.String(length=254, collation='utf8mb4_unicode_ci'), existing_nullable=False)
