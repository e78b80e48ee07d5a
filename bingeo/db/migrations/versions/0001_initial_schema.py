"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("street", sa.Text(), nullable=False),
        sa.Column("house_number", sa.Text(), nullable=True),
        sa.Column("box", sa.Text(), nullable=True),
        sa.Column("postcode", sa.String(length=4), nullable=True),
        sa.Column("municipality", sa.Text(), nullable=True),
        sa.Column("nis_code", sa.String(length=5), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="POINT",
                srid=31370,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                spatial_index=False,
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_key"),
    )
    op.create_index(
        "idx_addresses_geom", "addresses", ["geom"], unique=False, postgresql_using="gist"
    )
    op.create_index(
        "ix_addresses_nis_code_street", "addresses", ["nis_code", "street"], unique=False
    )
    op.create_table(
        "networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Enum("BIN", "BIN-Z", name="network_kind"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "idea",
                "preparation",
                "information_evening",
                "charter",
                "active",
                "dormant",
                "suspended",
                "merged",
                "dissolved",
                name="network_status",
            ),
            nullable=False,
        ),
        sa.Column("nis_code", sa.String(length=5), nullable=True),
        sa.Column("police_zone_code", sa.String(length=32), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=31370,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                spatial_index=False,
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
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
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index(
        "idx_networks_geom", "networks", ["geom"], unique=False, postgresql_using="gist"
    )
    op.create_table(
        "police_zone_municipalities",
        sa.Column("police_zone_code", sa.String(length=32), nullable=False),
        sa.Column("nis_code", sa.String(length=5), nullable=False),
        sa.PrimaryKeyConstraint("police_zone_code", "nis_code"),
    )
    op.create_table(
        "reference_areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "sector", "wijk", "deelgemeente", "municipality", "police_zone", name="area_level"
            ),
            nullable=False,
        ),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_nl", sa.Text(), nullable=True),
        sa.Column("name_fr", sa.Text(), nullable=True),
        sa.Column("nis_code", sa.String(length=5), nullable=True),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=31370,
                dimension=2,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                spatial_index=False,
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("level", "code", name="uq_reference_areas_level_code"),
    )
    op.create_index(
        "idx_reference_areas_geom",
        "reference_areas",
        ["geom"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_index(
        "ix_reference_areas_level_nis_code", "reference_areas", ["level", "nis_code"], unique=False
    )
    op.create_table(
        "streets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nis_code", sa.String(length=5), server_default="", nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nis_code", "name", name="uq_streets_nis_code_name"),
    )
    op.create_index(
        "ix_streets_name_trgm",
        "streets",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index(
        "ix_streets_name_trgm",
        table_name="streets",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_table("streets")
    op.drop_index("ix_reference_areas_level_nis_code", table_name="reference_areas")
    op.drop_index("idx_reference_areas_geom", table_name="reference_areas", postgresql_using="gist")
    op.drop_table("reference_areas")
    op.drop_table("police_zone_municipalities")
    op.drop_index("idx_networks_geom", table_name="networks", postgresql_using="gist")
    op.drop_table("networks")
    op.drop_index("ix_addresses_nis_code_street", table_name="addresses")
    op.drop_index("idx_addresses_geom", table_name="addresses", postgresql_using="gist")
    op.drop_table("addresses")
    for enum_name in ("area_level", "network_kind", "network_status"):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
