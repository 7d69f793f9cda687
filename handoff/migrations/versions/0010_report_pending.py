"""reports: conversations whose projection is behind (recomputed before the next report)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty at upgrade: 0008 left the projection complete.
    op.create_table(
        'report_pending',
        sa.Column('conversation_id', sa.String(length=32), sa.ForeignKey('conversations.id'),
                  primary_key=True),
        sa.Column('version', sa.Integer(), nullable=False, server_default='1'),
    )


def downgrade() -> None:
    op.drop_table('report_pending')
