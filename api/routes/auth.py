"""Password login for the web app: a short-lived bearer token, logout, and who am I."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, EngineDep, SettingsDep, bearer
from api.routing import ThreadedJSONRoute
from api.schemas import ERRORS, ErrorBody
from bingeo.access import Principal
from bingeo.errors import NotAuthenticated
from bingeo.services import users as service

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERRORS, route_class=ThreadedJSONRoute)
# Answers that carry or revoke a token: never stored by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


class LoginRequest(BaseModel):
    """A user's name and password."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    """The logged-in user: role and the scope it applies to."""

    name: str
    role: str
    police_zone_code: str | None = None
    nis_code: str | None = None
    network_id: int | None = None
    scope: str | None = None


class LoginResponse(BaseModel):
    """A bearer token for the API, valid until ``expires_at``."""

    token: str
    token_type: str = "bearer"
    expires_at: dt.datetime
    user: Me


TOO_MANY = {"model": ErrorBody, "description": "Too many failed logins; see Retry-After."}


@router.post("/login", responses={429: TOO_MANY})
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    engine: EngineDep,
    settings: SettingsDep,
) -> LoginResponse:
    """Exchange name and password for a short-lived API token (label "web login").

    Every attempt is audited. After ``login_max_failures`` failed attempts for a name from one
    client address (or ``login_max_failures_per_client`` from it for any names), that client
    waits, longer after each further failure: the answer is 429 with ``Retry-After``, whether
    the name exists or not. Other clients, the real user's included, are not held back.
    """
    response.headers.update(NO_STORE)
    # scrypt takes tens of milliseconds: off the event loop.
    token, expires_at, principal = await run_in_threadpool(
        service.login,
        engine,
        body.name,
        body.password,
        limits=service.LoginLimits.from_settings(settings),
        client=request.client.host if request.client else None,
        request_id=request.state.request_id,
    )
    return LoginResponse(token=token, expires_at=expires_at, user=_me(principal))


@router.post("/logout", status_code=204)
def logout(
    engine: EngineDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    """Revoke the bearer token of this request."""
    if credentials is None:
        raise NotAuthenticated("logout needs the bearer token to revoke")
    service.logout(engine, credentials.credentials)
    return Response(status_code=204, headers=NO_STORE)


@router.get("/me")
def me(actor: ActorDep, response: Response) -> Me:
    """Role and scope of the bearer token's user."""
    response.headers.update(NO_STORE)
    if actor.principal.anonymous:
        raise NotAuthenticated("no bearer token given")
    return _me(actor.principal)


def _me(principal: Principal) -> Me:
    return Me(
        name=principal.name,
        role=principal.role.value if principal.role else "anonymous",
        police_zone_code=principal.police_zone_code,
        nis_code=principal.nis_code,
        network_id=principal.network_id,
        scope=principal.scope_text(),
    )
