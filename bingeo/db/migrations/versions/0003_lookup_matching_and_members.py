"""lookup, matching and members

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postcodes",
        sa.Column("postcode", sa.String(length=4), nullable=False),
        sa.Column("nis_code", sa.String(length=5), server_default="", nullable=False),
        sa.Column("municipality", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("postcode", "nis_code"),
    )
    op.create_table(
        "address_networks",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("address_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["address_id"], ["addresses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("network_id", "address_id"),
    )
    op.create_index(
        op.f("ix_address_networks_address_id"), "address_networks", ["address_id"], unique=False
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("address_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=2), server_default="nl", nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outside_area", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["address_id"],
            ["addresses.id"],
        ),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_members_address_id"), "members", ["address_id"], unique=False)
    op.create_index(op.f("ix_members_network_id"), "members", ["network_id"], unique=False)
    op.add_column("streets", sa.Column("name_norm", sa.Text(), nullable=True))
    op.create_index(
        "ix_streets_name_norm_trgm",
        "streets",
        ["name_norm"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name_norm": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index(
        "ix_streets_name_norm_trgm",
        table_name="streets",
        postgresql_using="gin",
        postgresql_ops={"name_norm": "gin_trgm_ops"},
    )
    op.drop_column("streets", "name_norm")
    op.drop_index(op.f("ix_members_network_id"), table_name="members")
    op.drop_index(op.f("ix_members_address_id"), table_name="members")
    op.drop_table("members")
    op.drop_index(op.f("ix_address_networks_address_id"), table_name="address_networks")
    op.drop_table("address_networks")
    op.drop_table("postcodes")
