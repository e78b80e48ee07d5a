"""Dependencies shared by the routes: engine, settings, the acting principal, paging."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from bingeo.access import Actor
from bingeo.services.users import known_principal, look_up_principal
from bingeo.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API token made with `bingeo tokens create`")


# async: they only read app state, and FastAPI runs a plain def dependency in a worker thread
# (a thread hop per dependency and request).
async def get_engine(request: Request) -> Engine:
    """The engine created in the app's lifespan."""
    return request.app.state.engine


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def public_url(request: Request, path: str, query: str = "") -> str:
    """An absolute link in an answer: the configured public base URL and ``path`` (and
    ``query``), never the request's Host header, which the client chooses."""
    base = request.app.state.settings.public_base_url.rstrip("/")
    return f"{base}{path}" + (f"?{query}" if query else "")


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_actor(
    request: Request,
    engine: EngineDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The caller (anonymous without a token) within this request."""
    token = credentials.credentials if credentials else None
    cache = request.app.state.principals
    # A cached principal is answered here; a database lookup goes to a worker thread (the
    # thread hop only when it is needed).
    principal = known_principal(token, cache)
    if principal is None:
        principal = await run_in_threadpool(look_up_principal, engine, token, cache=cache)
    client = request.client.host if request.client else None
    return Actor(principal=principal, request_id=request.state.request_id, client=client)


ActorDep = Annotated[Actor, Depends(get_actor)]
# An id in a path: a PostgreSQL integer, so that larger numbers are refused before any query.
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Paging:
    """Bounded paging: ``limit`` capped by the settings, ``offset`` from 0."""

    def __init__(
        self,
        settings: SettingsDep,
        limit: Annotated[int | None, Query(ge=1, description="Page size (capped).")] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> None:
        self.limit = min(limit or settings.page_limit_default, settings.page_limit_max)
        self.offset = offset


PagingDep = Annotated[Paging, Depends()]
