"""Alembic environment for the shop's tables: runs on the connection shop/migrate.py passes in."""

from __future__ import annotations

from alembic import context

from shop.migrate import VERSION_TABLE
from shop.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run shop migrations through shop.migrate (python -m shop migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
