"""cart, wishlist, default payment token

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 16:01:09.427190
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cart_items',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('added_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.Column('updated_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.CheckConstraint('quantity > 0', name='ck_cart_items_quantity_positive'),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'sku')
    )
    op.create_table('wishlist_items',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('added_at', mysql.DATETIME(fsp=6), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'sku')
    )
    op.add_column('accounts', sa.Column('default_payment_token', sa.String(length=128), nullable=True))
    op.create_index('ix_idempotency_keys_scope_key', 'idempotency_keys', ['scope', 'key'], unique=False)
    op.add_column('orders', sa.Column('source', sa.String(length=16), server_default='api', nullable=False))
    op.add_column('orders_archive', sa.Column('source', sa.String(length=16), server_default='api', autoincrement=False, nullable=False))


def downgrade() -> None:
    op.drop_column('orders_archive', 'source')
    op.drop_column('orders', 'source')
    op.drop_index('ix_idempotency_keys_scope_key', table_name='idempotency_keys')
    op.drop_column('accounts', 'default_payment_token')
    op.drop_table('wishlist_items')
    op.drop_table('cart_items')
