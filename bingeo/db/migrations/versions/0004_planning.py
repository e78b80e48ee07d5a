"""network versions, lifecycle and roles (issue: planning)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUS = postgresql.ENUM(name="network_status", create_type=False)


def upgrade() -> None:
    op.create_table(
        "network_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("MULTIPOLYGON", srid=31370, spatial_index=False),
            nullable=False,
        ),
        sa.Column("changed_by", sa.String(length=128), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id", "version", name="uq_network_versions_network_version"),
    )
    op.create_index(
        "idx_network_versions_geom", "network_versions", ["geom"], postgresql_using="gist"
    )
    op.create_table(
        "network_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("from_status", STATUS, nullable=False),
        sa.Column("to_status", STATUS, nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("by", sa.String(length=128), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_network_transitions_network_id"),
        "network_transitions",
        ["network_id"],
        unique=False,
    )
    op.create_table(
        "network_lifecycle",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=True),
        sa.Column("members_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("network_id"),
    )
    op.add_column("network_contacts", sa.Column("adult", sa.Boolean(), nullable=True))
    op.add_column("network_contacts", sa.Column("screened", sa.Boolean(), nullable=True))
    op.add_column("network_contacts", sa.Column("screened_at", sa.Date(), nullable=True))
    op.add_column("network_contacts", sa.Column("organisation", sa.Text(), nullable=True))
    # A BIN-Z counts its self-employed members among its roles (2019 circular).
    op.execute("ALTER TYPE contact_role ADD VALUE IF NOT EXISTS 'self_employed'")
    # Every change of a network's members, by any code path, dates the network's last member
    # change (dormant detection); a member deleted with its network leaves nothing to date.
    op.execute(
        "CREATE FUNCTION network_members_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE nid integer := COALESCE(NEW.network_id, OLD.network_id); "
        "BEGIN "
        "INSERT INTO network_lifecycle (network_id, members_changed_at) "
        "SELECT nid, now() WHERE EXISTS (SELECT 1 FROM networks WHERE id = nid) "
        "ON CONFLICT (network_id) DO UPDATE SET members_changed_at = now(); "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER members_changed AFTER INSERT OR UPDATE OR DELETE ON members "
        "FOR EACH ROW EXECUTE FUNCTION network_members_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS members_changed ON members")
    op.execute("DROP FUNCTION IF EXISTS network_members_changed()")
    # PostgreSQL cannot drop an enum value: rebuild the type without it.
    op.execute("DELETE FROM network_contacts WHERE role = 'self_employed'")
    op.execute("ALTER TYPE contact_role RENAME TO contact_role_old")
    op.execute(
        "CREATE TYPE contact_role AS ENUM "
        "('coordinator', 'steering_group', 'police_officer', 'local_authority')"
    )
    op.execute(
        "ALTER TABLE network_contacts ALTER COLUMN role TYPE contact_role "
        "USING role::text::contact_role"
    )
    op.execute("DROP TYPE contact_role_old")
    for column in ("organisation", "screened_at", "screened", "adult"):
        op.drop_column("network_contacts", column)
    op.drop_table("network_lifecycle")
    op.drop_index(op.f("ix_network_transitions_network_id"), table_name="network_transitions")
    op.drop_table("network_transitions")
    op.drop_index("idx_network_versions_geom", table_name="network_versions")
    op.drop_table("network_versions")
