"""Users and API tokens: created from the CLI, checked on every API request."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from bingeo.access import ANONYMOUS, Principal
from bingeo.db import users as user_repo
from bingeo.db.models import Role
from bingeo.errors import Conflict, InvalidInput, NotAuthenticated, NotFound

TOKEN_PREFIX = "bgo_"
SCOPE_OF_ROLE = {
    Role.admin: None,
    Role.police_analyst: "police_zone_code",
    Role.police_officer: "police_zone_code",
    Role.municipality_planner: "nis_code",
    Role.coordinator: "network_id",
}


def add_user(
    engine: Engine,
    name: str,
    role: Role | str,
    *,
    police_zone_code: str | None = None,
    nis_code: str | None = None,
    network_id: int | None = None,
) -> int:
    """Create a user; the role's scope (zone, municipality or network) must be given."""
    role = Role(role)
    scopes = {
        "police_zone_code": police_zone_code,
        "nis_code": nis_code,
        "network_id": network_id,
    }
    needed = SCOPE_OF_ROLE[role]
    if needed and scopes[needed] is None:
        raise InvalidInput(f"role {role.value} needs a scope: {needed}")
    extra = [k for k, v in scopes.items() if v is not None and k != needed]
    if extra:
        raise InvalidInput(f"role {role.value} takes no {', '.join(extra)}")
    try:
        with engine.begin() as connection:
            return user_repo.add_user(connection, name=name, role=role, **scopes)
    except IntegrityError as exc:
        raise Conflict(f"user {name!r} exists already, or its network does not exist") from exc


def create_token(
    engine: Engine,
    user_name: str,
    *,
    label: str | None = None,
    expires_in_days: float | None = None,
) -> tuple[int, str]:
    """A new token for ``user_name``: (id, the token). The token is shown once, stored hashed."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = None
    if expires_in_days is not None:
        if expires_in_days <= 0:
            raise InvalidInput("expires_in_days must be positive")
        expires_at = _now() + dt.timedelta(days=expires_in_days)
    with engine.begin() as connection:
        user = user_repo.user_by_name(connection, user_name)
        if user is None:
            raise NotFound(f"no user {user_name!r}")
        token_id = user_repo.add_token(
            connection,
            user_id=user.id,
            token_hash=hash_token(token),
            label=label,
            expires_at=expires_at,
        )
    return token_id, token


def revoke_token(engine: Engine, token_id: int) -> None:
    """Revoke a token at once."""
    with engine.begin() as connection:
        if not user_repo.revoke_token(connection, token_id, _now()):
            raise NotFound(f"no live token {token_id}")


def list_users(engine: Engine) -> list[dict]:
    """Every user with role and scope (no tokens)."""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in user_repo.list_users(connection)]


def list_tokens(engine: Engine) -> list[dict]:
    """Every token's id, owner, label and validity (never the token or its hash)."""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in user_repo.list_tokens(connection)]


def authenticate(engine: Engine, token: str | None) -> Principal:
    """The principal of a bearer token; anonymous without one, an error for a bad one."""
    if not token:
        return ANONYMOUS
    with engine.connect() as connection:
        user = user_repo.user_for_token(connection, hash_token(token), _now())
    if user is None:
        raise NotAuthenticated("the bearer token is unknown, expired or revoked")
    return Principal(
        user_id=user.id,
        name=user.name,
        role=Role(user.role),
        police_zone_code=user.police_zone_code,
        nis_code=user.nis_code,
        network_id=user.network_id,
    )


def hash_token(token: str) -> str:
    """SHA-256 of a token (tokens are long random strings, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
