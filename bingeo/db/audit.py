"""Repository of the append-only audit trail."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bingeo.db.models import AuditEntry, RefusalCount

AUDIT = AuditEntry.__table__
REFUSALS = RefusalCount.__table__


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


def count_refusal(connection: Connection, *, client: str, kind: str) -> tuple[int, dt.datetime]:
    """Count one refusal of ``kind`` for ``client`` in the current minute: (count so far in
    that minute, the minute)."""
    key = (REFUSALS.c.client, REFUSALS.c.kind, REFUSALS.c.minute)
    statement = (
        pg_insert(REFUSALS)
        .values(client=client, kind=kind, minute=func.date_trunc("minute", func.now()), count=1)
        .on_conflict_do_update(index_elements=key, set_={"count": REFUSALS.c.count + 1})
        .returning(REFUSALS.c.count, REFUSALS.c.minute)
    )
    count, minute = connection.execute(statement).one()
    return count, minute


def previous_refusals(
    connection: Connection, *, client: str, kind: str, before: dt.datetime
) -> tuple[dt.datetime, int] | None:
    """The last minute before ``before`` with refusals of ``kind`` for ``client``, and their
    count, or None."""
    row = connection.execute(
        select(REFUSALS.c.minute, REFUSALS.c.count)
        .where(REFUSALS.c.client == client, REFUSALS.c.kind == kind, REFUSALS.c.minute < before)
        .order_by(REFUSALS.c.minute.desc())
        .limit(1)
    ).first()
    return (row.minute, row.count) if row else None


def forget_refusals(connection: Connection, *, older_than_s: float) -> None:
    """Delete the counts of minutes older than ``older_than_s`` seconds."""
    since = func.now() - dt.timedelta(seconds=older_than_s)
    connection.execute(delete(REFUSALS).where(REFUSALS.c.minute < since))
