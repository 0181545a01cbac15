"""archive, notifications, reconciliation, domain events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 15:54:58.838568
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notifications',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claimed_until', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('sent_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'event', name='uq_notifications_order_event')
    )
    op.create_table('order_history_archive',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('reason', sa.String(length=32), autoincrement=False, nullable=True),
    sa.Column('note', sa.String(length=255), autoincrement=False, nullable=True),
    sa.Column('at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_order_history_archive_order', 'order_history_archive', ['order_id'], unique=False)
    op.create_table('order_lines_archive',
    sa.Column('order_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('sku', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('quantity', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), autoincrement=False, nullable=True),
    sa.PrimaryKeyConstraint('order_id', 'sku')
    )
    op.create_table('orders_archive',
    sa.Column('id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('account_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('reason', sa.String(length=32), autoincrement=False, nullable=True),
    sa.Column('total_cents', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('currency', sa.String(length=3), autoincrement=False, nullable=False),
    sa.Column('hold_expires_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=True),
    sa.Column('shipping_address', sa.JSON(), autoincrement=False, nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.Column('archived_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_orders_archive_account_created', 'orders_archive', ['account_id', 'created_at'], unique=False)
    op.create_index('ix_orders_archive_created', 'orders_archive', ['created_at'], unique=False)
    op.create_index('ix_orders_archive_status_created', 'orders_archive', ['status', 'created_at'], unique=False)
    op.create_table('payments_archive',
    sa.Column('id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('attempt', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('method', sa.String(length=16), autoincrement=False, nullable=False),
    sa.Column('token', sa.String(length=128), autoincrement=False, nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('currency', sa.String(length=3), autoincrement=False, nullable=False),
    sa.Column('status', sa.String(length=16), autoincrement=False, nullable=False),
    sa.Column('provider_payment_id', sa.String(length=64), autoincrement=False, nullable=True),
    sa.Column('checkout_url', sa.String(length=512), autoincrement=False, nullable=True),
    sa.Column('provider_refund_id', sa.String(length=64), autoincrement=False, nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_payments_archive_order', 'payments_archive', ['order_id'], unique=False)
    op.create_table('reconciliation_reports',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('skus_checked', sa.Integer(), nullable=False),
    sa.Column('drift_count', sa.Integer(), nullable=False),
    sa.Column('repaired', sa.Boolean(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('reserved_stock_archive',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('order_id', sa.String(length=32), autoincrement=False, nullable=False),
    sa.Column('sku', sa.String(length=64), autoincrement=False, nullable=False),
    sa.Column('quantity', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('expires_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.Column('state', sa.String(length=16), autoincrement=False, nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=False),
    sa.Column('released_at', mysql.DATETIME(fsp=6), autoincrement=False, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_reserved_stock_archive_order', 'reserved_stock_archive', ['order_id'], unique=False)
    op.create_index('ix_orders_created', 'orders', ['created_at'], unique=False)
    op.create_index('ix_orders_status_created', 'orders', ['status', 'created_at'], unique=False)
    op.add_column('outbox', sa.Column('exchange', sa.String(length=128), nullable=True))
    op.add_column('outbox', sa.Column('routing_key', sa.String(length=128), nullable=True))
    op.alter_column('outbox', 'queue_name',
               existing_type=mysql.VARCHAR(length=64),
               nullable=True)
    op.alter_column('outbox', 'actor_name',
               existing_type=mysql.VARCHAR(length=64),
               nullable=True)
    op.add_column('stock', sa.Column('committed_archived', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('stock', 'committed_archived')
    op.alter_column('outbox', 'actor_name',
               existing_type=mysql.VARCHAR(length=64),
               nullable=False)
    op.alter_column('outbox', 'queue_name',
               existing_type=mysql.VARCHAR(length=64),
               nullable=False)
    op.drop_column('outbox', 'routing_key')
    op.drop_column('outbox', 'exchange')
    op.drop_index('ix_orders_status_created', table_name='orders')
    op.drop_index('ix_orders_created', table_name='orders')
    op.drop_index('ix_reserved_stock_archive_order', table_name='reserved_stock_archive')
    op.drop_table('reserved_stock_archive')
    op.drop_table('reconciliation_reports')
    op.drop_index('ix_payments_archive_order', table_name='payments_archive')
    op.drop_table('payments_archive')
    op.drop_index('ix_orders_archive_status_created', table_name='orders_archive')
    op.drop_index('ix_orders_archive_created', table_name='orders_archive')
    op.drop_index('ix_orders_archive_account_created', table_name='orders_archive')
    op.drop_table('orders_archive')
    op.drop_table('order_lines_archive')
    op.drop_index('ix_order_history_archive_order', table_name='order_history_archive')
    op.drop_table('order_history_archive')
    op.drop_table('notifications')
