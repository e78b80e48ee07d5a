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
