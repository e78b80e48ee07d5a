"""Repository of the alerts a network received (the coordinator's inbox)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from bingeo.db.models import Alert, AlertNetwork, AlertRecipient

ALERTS = Alert.__table__
ALERT_NETWORKS = AlertNetwork.__table__
RECIPIENTS = AlertRecipient.__table__


def received(connection: Connection, network_id: int, *, limit: int, offset: int) -> list:
    """Alerts that reached ``network_id``, newest first."""
    return list(
        connection.execute(
            select(
                ALERTS.c.id,
                ALERTS.c.created_at,
                ALERTS.c.mode,
                ALERTS.c.urgency,
                ALERTS.c.status,
                ALERTS.c.headline,
                ALERTS.c.messages,
                ALERTS.c.cancelled_at,
                ALERT_NETWORKS.c.share_inside,
            )
            .join(ALERT_NETWORKS, ALERT_NETWORKS.c.alert_id == ALERTS.c.id)
            .where(ALERT_NETWORKS.c.network_id == network_id)
            .order_by(ALERTS.c.created_at.desc(), ALERTS.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def count_received(connection: Connection, network_id: int) -> int:
    """How many alerts reached ``network_id``."""
    return connection.execute(
        select(func.count()).where(ALERT_NETWORKS.c.network_id == network_id)
    ).scalar_one()


def deliveries_to(connection: Connection, network_id: int, alert_ids: Sequence[int]) -> list:
    """(alert id, status, count) of the deliveries of ``alert_ids`` to ``network_id``'s people."""
    if not alert_ids:
        return []
    return list(
        connection.execute(
            select(RECIPIENTS.c.alert_id, RECIPIENTS.c.status, func.count())
            .where(RECIPIENTS.c.network_id == network_id, RECIPIENTS.c.alert_id.in_(alert_ids))
            .group_by(RECIPIENTS.c.alert_id, RECIPIENTS.c.status)
        )
    )
