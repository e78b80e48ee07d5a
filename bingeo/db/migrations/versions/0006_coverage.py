"""stored facts for coverage figures (issue: coverage)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The type exists since 0001.
AREA_LEVEL = postgresql.ENUM(
    "sector",
    "wijk",
    "deelgemeente",
    "municipality",
    "police_zone",
    name="area_level",
    create_type=False,
)


def upgrade() -> None:
    op.create_table(
        "address_areas",
        sa.Column("level", AREA_LEVEL, nullable=False),
        sa.Column("address_id", sa.BigInteger(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["address_id"], ["addresses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["area_id"], ["reference_areas.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("level", "address_id"),
    )
    op.create_index(
        "ix_address_areas_level_area_id", "address_areas", ["level", "area_id"], unique=False
    )
    op.create_table(
        "address_area_state",
        sa.Column("level", AREA_LEVEL, nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column(
            "refreshed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("level"),
    )


def downgrade() -> None:
    op.drop_table("address_area_state")
    op.drop_index("ix_address_areas_level_area_id", table_name="address_areas")
    op.drop_table("address_areas")
