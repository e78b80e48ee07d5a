"""Repository of password login attempts: the back-off shared by every server process."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, func, insert, select, update

from bingeo.db.models import LoginAttempt

ATTEMPTS = LoginAttempt.__table__
# Outcomes that count against the limit: a pending attempt may be a failure being checked.
COUNTED = ("pending", "failed")


def begin(connection: Connection, *, user_name: str, client: str | None, window_s: float) -> int:
    """Forget attempts older than the window, store a pending attempt and return its id."""
    window = dt.timedelta(seconds=window_s)
    connection.execute(delete(ATTEMPTS).where(ATTEMPTS.c.at < func.now() - window))
    return connection.execute(
        insert(ATTEMPTS).values(user_name=user_name, client=client).returning(ATTEMPTS.c.id)
    ).scalar_one()


def counted_failures(
    connection: Connection,
    *,
    attempt_id: int,
    user_name: str,
    client: str | None,
    window_s: float,
) -> tuple[list[dt.datetime], list[dt.datetime], dt.datetime]:
    """Times of the other counted attempts in the window for the name from this client (since
    its last success there) and from the client for any name, oldest first, and the database's
    time now. Attempts from other clients do not count: they hold back their own clients."""
    now = connection.execute(select(func.now())).scalar_one()
    start = now - dt.timedelta(seconds=window_s)
    pair = (ATTEMPTS.c.user_name == user_name, ATTEMPTS.c.client == client)
    last_success = (
        select(func.max(ATTEMPTS.c.at))
        .where(*pair, ATTEMPTS.c.outcome == "succeeded")
        .scalar_subquery()
    )
    others = (ATTEMPTS.c.id != attempt_id, ATTEMPTS.c.outcome.in_(COUNTED), ATTEMPTS.c.at > start)
    by_pair = select(ATTEMPTS.c.at).where(
        *others, *pair, ATTEMPTS.c.at > func.coalesce(last_success, start)
    )
    by_client = select(ATTEMPTS.c.at).where(*others, ATTEMPTS.c.client == client)
    pairs = list(connection.execute(by_pair.order_by(ATTEMPTS.c.at)).scalars())
    clients = (
        list(connection.execute(by_client.order_by(ATTEMPTS.c.at)).scalars())
        if client is not None
        else []
    )
    return pairs, clients, now


def forget(connection: Connection, attempt_id: int) -> None:
    """Delete an attempt that was held back before its password was looked at."""
    connection.execute(delete(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id))


def finish(connection: Connection, attempt_id: int, outcome: str) -> None:
    """Record the outcome of an attempt: failed or succeeded."""
    connection.execute(update(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id).values(outcome=outcome))
