"""the application's role without superuser rights; the audit trail refuses TRUNCATE;
refusals of anonymous callers counted per client, kind and minute

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# The application connects as a member of this role (the embedded cluster logs in as it); the
# role that runs the migrations owns the schema and keeps DDL, TRUNCATE and the audit trail's
# history to itself.
APP_ROLE = "bingeo_app"


def upgrade() -> None:
    op.create_table(
        "refusal_counts",
        sa.Column("client", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=128), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client", "kind", "minute"),
    )
    op.create_index(op.f("ix_refusal_counts_minute"), "refusal_counts", ["minute"], unique=False)
    # A statement-level trigger: the row trigger of 0002 does not see TRUNCATE.
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )
    # Roles belong to the whole server: made here only when missing, and only by an owner
    # allowed to make roles; without one the application keeps connecting as the owner.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                BEGIN
                    CREATE ROLE {APP_ROLE} NOLOGIN;
                EXCEPTION
                    WHEN duplicate_object OR unique_violation THEN NULL;
                    WHEN insufficient_privilege THEN
                        RAISE NOTICE 'role {APP_ROLE} missing and not creatable: no grants';
                        RETURN;
                END;
            END IF;
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
            REVOKE INSERT, UPDATE, DELETE ON spatial_ref_sys FROM {APP_ROLE};
            REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE};
            GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
            -- Tables and sequences of later migrations (made by the same owner) get the same.
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
                GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
            ALTER DEFAULT PRIVILEGES IN SCHEMA public
                GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};
        END $$
        """
    )


def downgrade() -> None:
    # The role stays: other databases of the server may use it.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                ALTER DEFAULT PRIVILEGES IN SCHEMA public
                    REVOKE ALL ON TABLES FROM {APP_ROLE};
                ALTER DEFAULT PRIVILEGES IN SCHEMA public
                    REVOKE ALL ON SEQUENCES FROM {APP_ROLE};
                REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE};
                REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE};
            END IF;
        END $$
        """
    )
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.drop_index(op.f("ix_refusal_counts_minute"), table_name="refusal_counts")
    op.drop_table("refusal_counts")
