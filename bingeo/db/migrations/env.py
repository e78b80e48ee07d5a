"""Alembic environment: the URL and connection come from bingeo, not from an ini file."""

from __future__ import annotations

from alembic import context

from bingeo.db.models import Base

config = context.config
connection = config.attributes.get("connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=lambda obj, name, type_, reflected, compare_to: (
        not (type_ == "table" and name == "spatial_ref_sys")
    ),
)
with context.begin_transaction():
    context.run_migrations()
