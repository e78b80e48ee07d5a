"""approximate positions of addresses the register gives without one (issue 15, point 5)

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

METHODS = ("interpolated", "nearest_number", "street_centroid")


def upgrade() -> None:
    # NULL for the register's own positions: adding the column rewrites no row.
    op.add_column("addresses", sa.Column("position_method", sa.String(16), nullable=True))
    listed = ", ".join(f"'{m}'" for m in METHODS)
    op.create_check_constraint(
        "ck_addresses_position_method",
        "addresses",
        f"position_method IS NULL OR (geom IS NOT NULL AND position_method IN ({listed}))",
    )


def downgrade() -> None:
    # Approximate positions are not the register's: they go with the column.
    op.execute("UPDATE addresses SET geom = NULL WHERE position_method IS NOT NULL")
    op.drop_constraint("ck_addresses_position_method", "addresses", type_="check")
    op.drop_column("addresses", "position_method")
