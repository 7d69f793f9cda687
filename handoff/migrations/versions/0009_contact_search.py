"""contact search: a folded search column on contacts, filled for existing rows; list order index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from handoff.contacts.folding import search_text

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_contacts = sa.table('contacts', sa.column('id', sa.String), sa.column('name', sa.String),
                     sa.column('email', sa.String), sa.column('phone', sa.String),
                     sa.column('tags', sa.JSON), sa.column('search_text', sa.Text))


def upgrade() -> None:
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        # Existing rows get '' first, then their folded fields below.
        batch_op.add_column(sa.Column('search_text', sa.Text(), nullable=False,
                                      server_default=sa.text("''")))
    op.create_index('ix_contacts_created_id', 'contacts', ['created_at', 'id'])
    # Folding is Python's (Unicode casefold), so the backfill reads and writes each contact.
    bind = op.get_bind()
    rows = bind.execute(sa.select(_contacts.c.id, _contacts.c.name, _contacts.c.email,
                                  _contacts.c.phone, _contacts.c.tags)).all()
    for row in rows:
        folded = search_text(row.name, row.email, row.phone, row.tags)
        if folded:
            bind.execute(_contacts.update().where(_contacts.c.id == row.id)
                         .values(search_text=folded))


def downgrade() -> None:
    op.drop_index('ix_contacts_created_id', table_name='contacts')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('search_text')
