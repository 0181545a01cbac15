"""partial refunds, returns, payment attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:34:45.891808

A payment may now be refunded in parts: each refund is a row of ``refunds`` (its own provider
call and key), and ``payments.refunded_cents`` keeps what the provider confirmed. Payments that
were refunding or refunded before get the one whole refund they had, under the payment's own id:
that is the id the refund step derives its provider key from (``refund-<id>``), as before, so a
refund still in flight is not asked for twice. Returns get their tables; notification ledger
keys grow to name one occurrence of a repeated event (``order.refunded:<refund id>``).
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

_BACKFILL_REFUNDS = """
INSERT INTO {refunds} (id, order_id, payment_id, amount_cents, currency, status, reason,
                       return_id, provider_refund_id, created_at, updated_at)
SELECT id, order_id, id, amount_cents, currency,
       CASE status WHEN 'REFUNDED' THEN 'SUCCEEDED' ELSE 'PENDING' END,
       'whole payment', NULL, provider_refund_id, updated_at, updated_at
FROM {payments} WHERE status IN ('REFUND_PENDING', 'REFUNDED')
"""

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refunds_archive',
    sa.Column('id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('payment_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('currency', sa.String(length=3), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=16), autoincrement=False, nullable=False),
    sa.Column('reason', sa.String(length=255), autoincrement=False, nullable=True),
    sa.Column('return_id', sa.String(length=32), autoincrement=False, nullable=True),
    sa.Column('provider_refund_id', sa.String(length=64), autoincrement=False, nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_refunds_archive_order', 'refunds_archive', ['order_id'], unique=False)
    op.create_table('return_lines_archive',
    sa.Column('return_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('sku', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('quantity', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('return_id', 'sku')
    )
    op.create_index('ix_return_lines_archive_order', 'return_lines_archive', ['order_id'], unique=False)
    op.create_table('returns_archive',
    sa.Column('id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=16), autoincrement=False, nullable=False),
    sa.Column('reason', sa.String(length=500), autoincrement=False, nullable=True),
    sa.Column('rejection_reason', sa.String(length=500), autoincrement=False, nullable=True),
    sa.Column('restocked', sa.Boolean(), autoincrement=False, nullable=True),
    sa.Column('refund_id', sa.String(length=32), autoincrement=False, nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_returns_archive_order', 'returns_archive', ['order_id'], unique=False)
    op.create_table('returns',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('rejection_reason', sa.String(length=500), nullable=True),
    sa.Column('restocked', sa.Boolean(), nullable=True),
    sa.Column('refund_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_returns_order', 'returns', ['order_id'], unique=False)
    op.create_table('refunds',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('payment_id', sa.String(length=32), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('return_id', sa.String(length=32), nullable=True),
    sa.Column('provider_refund_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.CheckConstraint('amount_cents > 0', name='ck_refunds_amount_positive'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_refund_id')
    )
    op.create_index('ix_refunds_order', 'refunds', ['order_id'], unique=False)
    op.create_index('ix_refunds_payment_status', 'refunds', ['payment_id', 'status'], unique=False)
    op.create_table('return_lines',
    sa.Column('return_id', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('quantity > 0', name='ck_return_lines_quantity_positive'),
    sa.ForeignKeyConstraint(['return_id'], ['returns.id'], ),
    sa.PrimaryKeyConstraint('return_id', 'sku')
    )
    op.create_index('ix_return_lines_order', 'return_lines', ['order_id'], unique=False)
    op.add_column('idempotency_keys', sa.Column('result_id', sa.String(length=32), nullable=True))
    op.alter_column('notifications', 'event',
               existing_type=mysql.VARCHAR(length=32),
               type_=sa.String(length=96),
               existing_nullable=False)
    for payments in ('payments', 'payments_archive'):
        # PARTIALLY_REFUNDED is longer than any status before it.
        op.alter_column(payments, 'status', existing_type=sa.String(length=16), type_=sa.String(length=24),
                        existing_nullable=False)
    op.add_column('payments', sa.Column('refunded_cents', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('payments_archive', sa.Column('refunded_cents', sa.BigInteger(), server_default='0',
                                                autoincrement=False, nullable=False))
    op.alter_column('payments_archive', 'refunded_cents', existing_type=sa.BigInteger(), server_default=None,
                    existing_nullable=False)
    for payments in ('payments', 'payments_archive'):
        op.execute(f"UPDATE {payments} SET refunded_cents = amount_cents WHERE status = 'REFUNDED'")
    op.create_check_constraint('ck_payments_refund_within_capture', 'payments', 'refunded_cents <= amount_cents')
    op.execute(_BACKFILL_REFUNDS.format(refunds='refunds', payments='payments'))
    op.execute(_BACKFILL_REFUNDS.format(refunds='refunds_archive', payments='payments_archive'))


def downgrade() -> None:
    # Partial refunds cannot be told apart by the old schema: payments keep their statuses.
    op.drop_constraint('ck_payments_refund_within_capture', 'payments', type_='check')
    op.drop_column('payments_archive', 'refunded_cents')
    for payments in ('payments', 'payments_archive'):
        op.alter_column(payments, 'status', existing_type=sa.String(length=24), type_=sa.String(length=16),
                        existing_nullable=False)
    op.drop_column('payments', 'refunded_cents')
    op.alter_column('notifications', 'event',
               existing_type=sa.String(length=96),
               type_=mysql.VARCHAR(length=32),
               existing_nullable=False)
    op.drop_column('idempotency_keys', 'result_id')
    op.drop_table('return_lines')
    op.drop_table('refunds')
    op.drop_table('returns')
    op.drop_table('returns_archive')
    op.drop_table('return_lines_archive')
    op.drop_table('refunds_archive')
