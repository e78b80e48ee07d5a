"""Recording and reading the audit trail of personal-data access and writes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine

from bingeo.access import (
    Action,
    Actor,
    Target,
    allowed,
    allowed_somewhere,
    authorize,
    authorize_somewhere,
)
from bingeo.db import audit as audit_repo


def record(
    connection: Connection,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object = None,
    *,
    target: Target | None = None,
    outcome: str = "allowed",
    details: dict | None = None,
) -> None:
    """Append an audit entry in the caller's transaction (so it lands with the write it records).

    ``details`` must never hold personal data: ids and counts only.
    """
    principal = actor.principal
    audit_repo.append(
        connection,
        user_id=principal.user_id,
        user_name=principal.name,
        role=principal.role.value if principal.role else None,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        scope=(target.describe() if target else None) or principal.scope_text(),
        request_id=actor.request_id,
        client=actor.client,
        outcome=outcome,
        details=details,
    )


# Counts of refusals per minute are kept this long; the audit entries carry them for good.
REFUSALS_KEPT_S = 86_400.0


def record_refusal(
    connection: Connection,
    actor: Actor,
    kind: str,
    *,
    action: str = "refused_request",
    object_type: str = "request",
    details: dict | None = None,
) -> bool:
    """Count a refusal of a caller without a valid token, per client address, ``kind`` and
    minute, and audit only the first of each minute (True when it did): the entry carries the
    count of the client's last earlier minute with refusals of that kind. A flood writes at
    most one audit entry per client, kind and minute.
    """
    client = (actor.client or "unknown")[:128]
    kind = kind[:128]
    count, minute = audit_repo.count_refusal(connection, client=client, kind=kind)
    if count > 1:
        return False
    previous = audit_repo.previous_refusals(connection, client=client, kind=kind, before=minute)
    audit_repo.forget_refusals(connection, older_than_s=REFUSALS_KEPT_S)
    counted = {
        "kind": kind,
        "previous_minute": previous[0].isoformat() if previous else None,
        "previous_count": previous[1] if previous else 0,
    }
    record(
        connection,
        actor,
        action,
        object_type,
        outcome="refused",
        details={**(details or {}), **counted},
    )
    return True


def refused_anonymously(engine: Engine, actor: Actor, kind: str) -> bool:
    """``record_refusal`` in a transaction of its own (a 401 answered by the API)."""
    with engine.begin() as connection:
        return record_refusal(connection, actor, kind)


def guard(
    engine: Engine,
    actor: Actor,
    action: Action,
    target: Target,
    object_type: str,
    object_id: object = None,
) -> None:
    """``authorize``, recording a refused attempt by a known user in the audit trail."""
    if allowed(actor.principal, action, target):
        return
    _record_refusal(engine, actor, action, object_type, object_id, target)
    authorize(actor.principal, action, target)


def guard_somewhere(
    engine: Engine, actor: Actor, action: Action, object_type: str, object_id: object = None
) -> None:
    """``authorize_somewhere``: the caller's role checked before the place is known (before a
    geometry is parsed), a refused attempt by a known user recorded in the audit trail."""
    if allowed_somewhere(actor.principal, action):
        return
    _record_refusal(engine, actor, action, object_type, object_id, None)
    authorize_somewhere(actor.principal, action)


def _record_refusal(
    engine: Engine,
    actor: Actor,
    action: Action,
    object_type: str,
    object_id: object,
    target: Target | None,
) -> None:
    if actor.principal.anonymous:
        return
    with engine.begin() as connection:
        record(
            connection,
            actor,
            action.value,
            object_type,
            object_id,
            target=target,
            outcome="refused",
        )


def read_trail(
    engine: Engine,
    actor: Actor,
    *,
    limit: int,
    offset: int = 0,
    user_name: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
) -> tuple[list[dict], int]:
    """A page of the audit trail (admins only)."""
    authorize(actor.principal, Action.admin)
    with engine.connect() as connection:
        rows, total = audit_repo.entries(
            connection, limit=limit, offset=offset, user_name=user_name, action=action, since=since
        )
    return [dict(row._mapping) for row in rows], total
