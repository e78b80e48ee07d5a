"""how residents join a network (issue 4)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Public text for residents (whom to contact); NULL: bingeo generates one from the places.
    op.add_column("networks", sa.Column("how_to_join", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("networks", "how_to_join")
