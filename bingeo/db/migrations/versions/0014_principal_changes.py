"""notifications of changed users and API tokens (the API's principal cache)

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Every statement that writes one of these tables (SQL typed by hand included) sends a
# notification on this channel, delivered when its transaction commits: an API process that
# listens empties its cache of token principals.
CHANNEL = "principals_changed"
TABLES = ("users", "api_tokens")


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION notify_principals_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify_change "
            f"AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION notify_principals_change()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_notify_change ON {table}")
    op.execute("DROP FUNCTION notify_principals_change()")
