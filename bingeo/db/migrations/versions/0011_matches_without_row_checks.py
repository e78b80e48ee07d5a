"""address-network matches without foreign-key checks (a derived table)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# address_networks is derived data: every row is computed from an address and a network read in
# the same transaction, and a network's rows are deleted with it (bingeo.db.networks). The
# foreign-key checks locked every matched address row and cost two thirds of the time of
# storing a large network's matches after an edit.
KEYS = (("address_id", "addresses"), ("network_id", "networks"))


def upgrade() -> None:
    for column, _ in KEYS:
        name = f"address_networks_{column}_fkey"
        op.drop_constraint(name, "address_networks", type_="foreignkey")


def downgrade() -> None:
    for column, table in KEYS:
        # Rows left by a deleted address or network would break the constraint.
        op.execute(
            f"DELETE FROM address_networks m WHERE NOT EXISTS "
            f"(SELECT 1 FROM {table} t WHERE t.id = m.{column})"
        )
        op.create_foreign_key(
            f"address_networks_{column}_fkey",
            "address_networks",
            table,
            [column],
            ["id"],
            ondelete="CASCADE",
        )
