"""Alembic environment: runs on the connection handoff/migrate.py passes in."""

from __future__ import annotations

from alembic import context

import handoff.agents.models  # noqa: F401  (registers the agents' tables)
import handoff.channels.messaging  # noqa: F401  (registers identities and deliveries)
import handoff.contacts.models  # noqa: F401  (registers contact identities and the audit trail)
import handoff.team_settings  # noqa: F401  (registers the team settings table)
import handoff.webhooks  # noqa: F401  (registers the webhook cursor table)
from handoff.conversations.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through handoff.migrate (python -m handoff migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
