"""address keys and street names compared byte by byte (collation "C")

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Only equality is ever asked of these columns, which is the same under every deterministic
# collation; sorting byte by byte builds their indexes several times faster than the locale's
# rules (PostgreSQL uses abbreviated keys only for "C"), which a national import pays for.
COLUMNS = ("source_key", "street")


def upgrade() -> None:
    for column in COLUMNS:
        op.alter_column("addresses", column, type_=sa.Text(collation="C"), existing_nullable=False)


def downgrade() -> None:
    for column in COLUMNS:
        op.alter_column("addresses", column, type_=sa.Text(), existing_nullable=False)
