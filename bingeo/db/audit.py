"""Repository of the append-only audit trail."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, func, insert, select

from bingeo.db.models import AuditEntry

AUDIT = AuditEntry.__table__


def append(connection: Connection, **values: object) -> int:
    """Append one audit entry and return its id."""
    return connection.execute(insert(AUDIT).values(**values).returning(AUDIT.c.id)).scalar_one()


def entries(
    connection: Connection,
    *,
    limit: int,
    offset: int = 0,
    user_name: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
) -> tuple[list, int]:
    """A page of audit entries, newest first, and the number matching the filters."""
    conditions = []
    if user_name:
        conditions.append(AUDIT.c.user_name == user_name)
    if action:
        conditions.append(AUDIT.c.action == action)
    if since:
        conditions.append(AUDIT.c.at >= since)
    query = select(AUDIT).where(*conditions)
    total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = connection.execute(query.order_by(AUDIT.c.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total)
