"""reports projection: a facts row and tallies per conversation, their sums per UTC day;
backfilled from the events

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
    # a report counts the conversations opened on each day of its range from this index...
    op.create_index('ix_conversation_facts_opened', 'conversation_facts',
                    ['opened_at', 'handed_off_at', 'resolved_at', 'channel', 'language'])
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
    # every tally of a range from the index alone, a channel or language filter included...
    op.create_index('ix_conversation_tallies_opened', 'conversation_tallies',
                    ['opened_at', 'kind', 'key', 'n', 'handed_off', 'value', 'channel',
                     'language'])
    # ...medians walking one kind's values in order; the topic and agent filters by key
    op.create_index('ix_conversation_tallies_kind_value', 'conversation_tallies',
                    ['kind', 'key', 'value', 'opened_at', 'channel', 'language'])
    op.create_table(
        'report_days',
        sa.Column('slice', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('key', sa.String(length=320), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('conversations', sa.Integer(), nullable=False),
        sa.Column('handed_off', sa.Integer(), nullable=False),
        sa.Column('value_sum', sa.Float(), nullable=False),
        sa.Column('value_count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('slice', 'day', 'kind', 'key'),
    )
    # A store upgrading gets the numbers its events give (the same code keeps them after).
    from handoff.reports.projection import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table('report_days')
    op.drop_index('ix_conversation_tallies_kind_value', table_name='conversation_tallies')
    op.drop_index('ix_conversation_tallies_opened', table_name='conversation_tallies')
    op.drop_table('conversation_tallies')
    op.drop_index('ix_conversation_facts_handed_off', table_name='conversation_facts')
    op.drop_index('ix_conversation_facts_opened', table_name='conversation_facts')
    op.drop_table('conversation_facts')
