"""alerts, recipients and the outbox (issue: alerts)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ENUMS = {
    "alert_mode": ("relay", "direct"),
    "alert_urgency": ("immediate", "expected", "future", "unknown"),
    "alert_status": ("queued", "sending", "done", "cancelled"),
    "recipient_kind": ("coordinator", "member"),
    "alert_channel": ("email", "sms", "voice"),
    "delivery_status": ("queued", "sending", "sent", "failed", "cancelled"),
}


def _enum(name: str) -> postgresql.ENUM:
    return postgresql.ENUM(*ENUMS[name], name=name, create_type=False)


def upgrade() -> None:
    bind = op.get_bind()
    for name, values in ENUMS.items():
        postgresql.ENUM(*values, name=name).create(bind)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_by_name", sa.String(length=128), nullable=False),
        sa.Column("police_zone_codes", sa.JSON(), nullable=False),
        sa.Column("mode", _enum("alert_mode"), nullable=False),
        sa.Column("urgency", _enum("alert_urgency"), nullable=False),
        sa.Column(
            "area",
            geoalchemy2.Geometry("MULTIPOLYGON", srid=31370, spatial_index=False),
            nullable=False,
        ),
        sa.Column(
            "circle_centre",
            geoalchemy2.Geometry("POINT", srid=31370, spatial_index=False),
            nullable=True,
        ),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("area_description", sa.Text(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("headline", sa.JSON(), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", _enum("alert_status"), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_alerts_area", "alerts", ["area"], postgresql_using="gist")
    op.create_table(
        "alert_networks",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("network_code", sa.String(length=64), nullable=False),
        sa.Column("share_inside", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id", "network_id"),
    )
    op.create_table(
        "alert_recipients",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("recipient_kind"), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("channel", _enum("alert_channel"), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", _enum("delivery_status"), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["network_contacts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(
        op.f("ix_alert_recipients_alert_id"), "alert_recipients", ["alert_id"], unique=False
    )
    op.create_index(
        "ix_alert_recipients_due", "alert_recipients", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_alert_recipients_due", table_name="alert_recipients")
    op.drop_index(op.f("ix_alert_recipients_alert_id"), table_name="alert_recipients")
    op.drop_table("alert_recipients")
    op.drop_table("alert_networks")
    op.drop_index("idx_alerts_area", table_name="alerts", postgresql_using="gist")
    op.drop_table("alerts")
    bind = op.get_bind()
    for name in reversed(ENUMS):
        postgresql.ENUM(name=name).drop(bind)
