"""shop tables

Revision ID: s0001
Revises: 
The demo store: customers, orders, lines, shipments and their events, invoices, payments,
refunds, billing cases and failed identity checks (for rate limiting).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 's0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shop_customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('shop_verification_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester', sa.String(length=200), nullable=False),
    sa.Column('order_number', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shop_verification_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_verification_failures_at'), ['at'], unique=False)
        batch_op.create_index('ix_shop_verification_failures_key', ['requester', 'order_number'], unique=False)

    op.create_table('shop_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_cents', sa.Integer(), nullable=False),
    sa.Column('shipping_address', sa.Text(), nullable=False),
    sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['shop_customers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('shop_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_orders_customer_id'), ['customer_id'], unique=False)

    op.create_table('shop_billing_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=24), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('payment_date', sa.Date(), nullable=True),
    sa.Column('method', sa.String(length=24), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['shop_orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('shop_billing_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_billing_cases_order_id'), ['order_id'], unique=False)

    op.create_table('shop_invoices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=24), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('total_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['shop_orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('shop_invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_invoices_order_id'), ['order_id'], unique=False)

    op.create_table('shop_order_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_cents', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['shop_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shop_order_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_order_lines_order_id'), ['order_id'], unique=False)

    op.create_table('shop_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=24), nullable=False),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['shop_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shop_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_payments_order_id'), ['order_id'], unique=False)

    op.create_table('shop_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=24), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('line_ids', sa.JSON(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['shop_orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('shop_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_refunds_order_id'), ['order_id'], unique=False)

    op.create_table('shop_shipments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('carrier', sa.String(length=64), nullable=False),
    sa.Column('tracking_number', sa.String(length=64), nullable=False),
    sa.Column('tracking_url', sa.String(length=300), nullable=False),
    sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('eta', sa.Date(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['shop_orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shop_shipments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_shipments_order_id'), ['order_id'], unique=False)

    op.create_table('shop_shipment_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('location', sa.String(length=120), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['shipment_id'], ['shop_shipments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shop_shipment_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shop_shipment_events_shipment_id'), ['shipment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('shop_shipment_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_shipment_events_shipment_id'))

    op.drop_table('shop_shipment_events')
    with op.batch_alter_table('shop_shipments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_shipments_order_id'))

    op.drop_table('shop_shipments')
    with op.batch_alter_table('shop_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_refunds_order_id'))

    op.drop_table('shop_refunds')
    with op.batch_alter_table('shop_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_payments_order_id'))

    op.drop_table('shop_payments')
    with op.batch_alter_table('shop_order_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_order_lines_order_id'))

    op.drop_table('shop_order_lines')
    with op.batch_alter_table('shop_invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_invoices_order_id'))

    op.drop_table('shop_invoices')
    with op.batch_alter_table('shop_billing_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_billing_cases_order_id'))

    op.drop_table('shop_billing_cases')
    with op.batch_alter_table('shop_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shop_orders_customer_id'))

    op.drop_table('shop_orders')
    with op.batch_alter_table('shop_verification_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_shop_verification_failures_key')
        batch_op.drop_index(batch_op.f('ix_shop_verification_failures_at'))

    op.drop_table('shop_verification_failures')
    op.drop_table('shop_customers')
