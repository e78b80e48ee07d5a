"""data versions: a counter per table that read models are built from (issue 7)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Every statement that writes one of these tables (SQL typed by hand included) gives its row of
# data_versions a new number from one sequence, in the writing transaction: a reader sees the
# new number exactly when it can see the change, and a number is never given twice (even after
# data_versions is emptied), so an unchanged set of numbers means unchanged tables.
TABLES = ("addresses", "networks", "members", "network_contacts")


def upgrade() -> None:
    op.execute("CREATE SEQUENCE data_version_numbers")
    op.create_table(
        "data_versions",
        sa.Column("table_name", sa.String(63), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO data_versions (table_name, version) "
        "SELECT name, nextval('data_version_numbers') "
        f"FROM unnest(ARRAY{list(TABLES)}::text[]) AS name"
    )
    op.execute(
        """
        CREATE FUNCTION count_data_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO data_versions (table_name, version)
            VALUES (TG_TABLE_NAME, nextval('data_version_numbers'))
            ON CONFLICT (table_name) DO UPDATE SET version = excluded.version;
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_count_change "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION count_data_change()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_count_change ON {table}")
    op.execute("DROP FUNCTION count_data_change()")
    op.drop_table("data_versions")
    op.execute("DROP SEQUENCE data_version_numbers")
