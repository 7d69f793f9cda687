"""reports: indexes for aggregating by time; the pending 0-10 question

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nps_pending', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    # A report picks conversations by when they were opened...
    op.create_index('ix_conversations_created_at', 'conversations', ['created_at'])
    # ...events of one kind (handoffs, ratings, kb_*, flow_*) from the range's start...
    op.create_index('ix_conversation_events_type_created', 'conversation_events',
                    ['type', 'created_at'])
    # ...each conversation's first handoff, claim and resolution from the index alone...
    op.create_index('ix_conversation_events_conversation_type', 'conversation_events',
                    ['conversation_id', 'type', 'created_at'])
    # ...and its first customer, assistant and agent message, also without reading the rows.
    op.create_index('ix_messages_conversation_author', 'messages',
                    ['conversation_id', 'author_type', 'created_at', 'private', 'reply_to_id'])


def downgrade() -> None:
    op.drop_index('ix_messages_conversation_author', table_name='messages')
    op.drop_index('ix_conversation_events_conversation_type', table_name='conversation_events')
    op.drop_index('ix_conversation_events_type_created', table_name='conversation_events')
    op.drop_index('ix_conversations_created_at', table_name='conversations')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('nps_pending')
