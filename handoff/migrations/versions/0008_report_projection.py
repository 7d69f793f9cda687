"""reports projection: a facts row and tallies per conversation, backfilled from the events

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'conversation_facts',
        sa.Column('conversation_id', sa.String(length=32), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=True),
        sa.Column('skills', sa.String(length=400), nullable=False),
        sa.Column('handed_off_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('first_customer_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('first_assistant_reply_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('first_agent_reply_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reopened', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id']),
        sa.PrimaryKeyConstraint('conversation_id'),
    )
    # a report reads the conversations opened in its range...
    op.create_index('ix_conversation_facts_opened', 'conversation_facts', ['opened_at'])
    # ...and the service levels join first handoffs to the team's opening hours
    op.create_index('ix_conversation_facts_handed_off', 'conversation_facts', ['handed_off_at'])
    op.create_table(
        'conversation_tallies',
        sa.Column('conversation_id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('key', sa.String(length=320), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('value', sa.Float(), nullable=True),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=True),
        sa.Column('handed_off', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id']),
        sa.PrimaryKeyConstraint('conversation_id', 'kind', 'key'),
    )
    # every tally of a range from the index alone; the topic and agent filters by key
    op.create_index('ix_conversation_tallies_opened', 'conversation_tallies',
                    ['opened_at', 'kind', 'key', 'n', 'handed_off'])
    op.create_index('ix_conversation_tallies_kind_key', 'conversation_tallies', ['kind', 'key'])
    # A store upgrading gets the numbers its events give (the same code keeps them after).
    from handoff.reports.projection import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index('ix_conversation_tallies_kind_key', table_name='conversation_tallies')
    op.drop_index('ix_conversation_tallies_opened', table_name='conversation_tallies')
    op.drop_table('conversation_tallies')
    op.drop_index('ix_conversation_facts_handed_off', table_name='conversation_facts')
    op.drop_index('ix_conversation_facts_opened', table_name='conversation_facts')
    op.drop_table('conversation_facts')
