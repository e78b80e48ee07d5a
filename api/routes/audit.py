"""The audit trail: readable by admins, never changeable through the API."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from api.deps import ActorDep, EngineDep, PagingDep
from api.schemas import ERRORS, AuditPage
from bingeo.services.audit import read_trail

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)


@router.get("", response_model=AuditPage)
def audit_trail(
    engine: EngineDep,
    actor: ActorDep,
    paging: PagingDep,
    user: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
) -> AuditPage:
    """Audit entries, newest first (admins only)."""
    entries, total = read_trail(
        engine,
        actor,
        limit=paging.limit,
        offset=paging.offset,
        user_name=user,
        action=action,
        since=since,
    )
    return AuditPage(total=total, entries=entries)
