"""data versions of reference areas and address-area states (coverage's read model, issue 8)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The coverage read model checks these versions (and those of migration 0012) on every request,
# instead of counting and aggregating the tables.
TABLES = ("reference_areas", "address_area_state")


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            "INSERT INTO data_versions (table_name, version) "
            f"VALUES ('{table}', nextval('data_version_numbers'))"
        )
        op.execute(
            f"CREATE TRIGGER {table}_count_change "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION count_data_change()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_count_change ON {table}")
        op.execute(f"DELETE FROM data_versions WHERE table_name = '{table}'")
