"""every municipality and police zone a network's area lies in (derived from its geometry)

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Networks stored before this migration get their places from their areas at once, with the rule
# of bingeo.db.networks.refresh_places (an intersection of at least 1 m²).
DERIVE = """
UPDATE networks n SET nis_codes = coalesce((
    SELECT array_agg(a.code ORDER BY ST_Area(ST_Intersection(a.geom, n.geom)) DESC, a.code)
    FROM reference_areas a
    WHERE a.level = 'municipality' AND ST_Intersects(a.geom, n.geom)
      AND ST_Area(ST_Intersection(a.geom, n.geom)) >= 1.0), '{}');
UPDATE networks n SET police_zone_codes = coalesce((
    SELECT array_agg(code ORDER BY rank, code) FROM (
        SELECT m.police_zone_code AS code, min(array_position(n.nis_codes, m.nis_code)) AS rank
        FROM police_zone_municipalities m WHERE m.nis_code = ANY(n.nis_codes)
        GROUP BY m.police_zone_code) ranked), '{}');
UPDATE networks SET nis_code = nis_codes[1], police_zone_code = police_zone_codes[1]
WHERE cardinality(nis_codes) > 0;
"""


def upgrade() -> None:
    op.add_column(
        "networks",
        sa.Column(
            "nis_codes",
            postgresql.ARRAY(sa.String(5)),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )
    op.add_column(
        "networks",
        sa.Column(
            "police_zone_codes",
            postgresql.ARRAY(sa.String(32)),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )
    op.create_index("ix_networks_nis_codes", "networks", ["nis_codes"], postgresql_using="gin")
    op.create_index(
        "ix_networks_police_zone_codes", "networks", ["police_zone_codes"], postgresql_using="gin"
    )
    op.execute(DERIVE)


def downgrade() -> None:
    op.drop_index("ix_networks_police_zone_codes", table_name="networks")
    op.drop_index("ix_networks_nis_codes", table_name="networks")
    op.drop_column("networks", "police_zone_codes")
    op.drop_column("networks", "nis_codes")
