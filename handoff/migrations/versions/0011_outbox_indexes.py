"""outbox: indexes for the pending deliveries and the recent platform statuses

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:30:00

The outbox reads both every round; without these it read every delivery and every status
ever recorded.
"""

from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_status_next_attempt', ['status', 'next_attempt_at'],
                              unique=False)
    with op.batch_alter_table('delivery_statuses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_statuses_received_at'), ['received_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery_statuses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_statuses_received_at'))
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_status_next_attempt')
