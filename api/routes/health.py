"""Liveness and database check."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep
from bingeo.services.status import ping

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(engine: EngineDep) -> dict[str, str]:
    """``ok`` when the database answers; 503 otherwise."""
    ping(engine)
    return {"status": "ok", "database": "ok"}
