"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 15:34:16.958791
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('shipping_address', sa.JSON(), nullable=True),
    sa.Column('billing_address', sa.JSON(), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('items',
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('upc', sa.String(length=32), nullable=True),
    sa.Column('picture_urls', sa.JSON(), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.CheckConstraint('price_cents >= 0', name='ck_items_price_nonnegative'),
    sa.PrimaryKeyConstraint('sku')
    )
    op.create_table('outbox',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('queue_name', sa.String(length=64), nullable=False),
    sa.Column('actor_name', sa.String(length=64), nullable=False),
    sa.Column('kwargs', sa.JSON(), nullable=False),
    sa.Column('delay_ms', sa.BigInteger(), nullable=True),
    sa.Column('order_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('sent_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_outbox_order_id'), 'outbox', ['order_id'], unique=False)
    op.create_index('ix_outbox_unsent', 'outbox', ['sent_at', 'created_at'], unique=False)
    op.create_table('webhook_events',
    sa.Column('id', sa.String(length=128, collation='utf8mb4_bin'), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('processed_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('outcome', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('idempotency_keys',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=255, collation='utf8mb4_bin'), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'key', 'scope')
    )
    op.create_table('orders',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('total_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('hold_expires_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.Column('shipping_address', sa.JSON(), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_orders_account_created', 'orders', ['account_id', 'created_at'], unique=False)
    op.create_index('ix_orders_status_updated', 'orders', ['status', 'updated_at'], unique=False)
    op.create_table('stock',
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('available', sa.Integer(), nullable=False),
    sa.Column('received', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('available >= 0', name='ck_stock_available_nonnegative'),
    sa.ForeignKeyConstraint(['sku'], ['items.sku'], ),
    sa.PrimaryKeyConstraint('sku')
    )
    op.create_table('stock_receipts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('received_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['sku'], ['items.sku'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_stock_receipts_sku'), 'stock_receipts', ['sku'], unique=False)
    op.create_table('order_history',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=True),
    sa.Column('at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_order_history_order_id'), 'order_history', ['order_id'], unique=False)
    op.create_table('order_lines',
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id', 'sku')
    )
    op.create_table('payments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('token', sa.String(length=128), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider_payment_id', sa.String(length=64), nullable=True),
    sa.Column('checkout_url', sa.String(length=512), nullable=True),
    sa.Column('provider_refund_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'attempt', name='uq_payments_order_attempt'),
    sa.UniqueConstraint('provider_payment_id')
    )
    op.create_table('reserved_stock',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('expires_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('released_at', mysql.DATETIME(fsp=6), nullable=True),
    sa.CheckConstraint('quantity > 0', name='ck_reserved_stock_quantity_positive'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['sku'], ['items.sku'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_reserved_stock_order', 'reserved_stock', ['order_id'], unique=False)
    op.create_index('ix_reserved_stock_sku_state', 'reserved_stock', ['sku', 'state'], unique=False)
    op.create_index('ix_reserved_stock_state_expires', 'reserved_stock', ['state', 'expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_reserved_stock_state_expires', table_name='reserved_stock')
    op.drop_index('ix_reserved_stock_sku_state', table_name='reserved_stock')
    op.drop_index('ix_reserved_stock_order', table_name='reserved_stock')
    op.drop_table('reserved_stock')
    op.drop_table('payments')
    op.drop_table('order_lines')
    op.drop_index(op.f('ix_order_history_order_id'), table_name='order_history')
    op.drop_table('order_history')
    op.drop_index(op.f('ix_stock_receipts_sku'), table_name='stock_receipts')
    op.drop_table('stock_receipts')
    op.drop_table('stock')
    op.drop_index('ix_orders_status_updated', table_name='orders')
    op.drop_index('ix_orders_account_created', table_name='orders')
    op.drop_table('orders')
    op.drop_table('idempotency_keys')
    op.drop_table('webhook_events')
    op.drop_index('ix_outbox_unsent', table_name='outbox')
    op.drop_index(op.f('ix_outbox_order_id'), table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('items')
    op.drop_table('accounts')
