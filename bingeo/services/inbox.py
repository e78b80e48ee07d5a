"""The alerts a network received, for its coordinator (and the police of its zone)."""

from __future__ import annotations

from sqlalchemy import Engine

from bingeo.access import Action, Actor
from bingeo.db import inbox as repo
from bingeo.services.audit import guard
from bingeo.services.networks import get_network


def received_alerts(
    engine: Engine, actor: Actor, network_id: int, *, limit: int, offset: int = 0
) -> tuple[list[dict], int]:
    """A page of the alerts that reached a network, newest first, and how many there are.

    Each has its texts and the deliveries to this network's people counted by status.
    """
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.read_alerts, network.target, "network_inbox", network_id)
    with engine.connect() as connection:
        rows = repo.received(connection, network_id, limit=limit, offset=offset)
        total = repo.count_received(connection, network_id)
        counts = repo.deliveries_to(connection, network_id, [r.id for r in rows])
    by_alert: dict[int, dict[str, int]] = {}
    for alert_id, status, count in counts:
        by_alert.setdefault(alert_id, {})[_value(status)] = count
    alerts = [
        {
            "id": row.id,
            "created_at": row.created_at,
            "mode": _value(row.mode),
            "urgency": _value(row.urgency),
            "status": _value(row.status),
            "headline": row.headline or {},
            "messages": row.messages or {},
            "cancelled_at": row.cancelled_at,
            "share_inside": row.share_inside,
            "deliveries": by_alert.get(row.id, {}),
        }
        for row in rows
    ]
    return alerts, total


def _value(value: object) -> str:
    return str(getattr(value, "value", value))
