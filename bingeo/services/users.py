"""Users and API tokens: created from the CLI, checked on every API request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
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
    password: str | None = None,
) -> int:
    """Create a user; the role's scope (zone, municipality or network) must be given.

    With ``password`` the user can also log in to the web app.
    """
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
    password_hash = hash_password(password) if password is not None else None
    try:
        with engine.begin() as connection:
            user_id = user_repo.add_user(connection, name=name, role=role, **scopes)
            if password_hash:
                user_repo.set_password_hash(connection, name, password_hash)
            return user_id
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


# Web login ------------------------------------------------------------------------------------

PASSWORD_MIN_LENGTH = 10
LOGIN_LABEL = "web login"
LOGIN_HOURS = 8.0
# scrypt cost: n=2**14, r=8, p=1 (16 MiB, tens of milliseconds: slows guessing, not users).
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LENGTH = 2**14, 8, 1, 32
# Verified when the user is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH: list[str] = []


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` as ``scrypt$n$r$p$salt$hash`` (hex)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(f"a password needs at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput("a password has at most 1024 characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LENGTH)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored`` (compared in constant time)."""
    if not stored or len(password) > 1024:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = bytes.fromhex(digest)
        if scheme != "scrypt":
            return False
        actual = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p), len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def set_password(engine: Engine, name: str, password: str) -> None:
    """Give user ``name`` a (new) password for the web app."""
    password_hash = hash_password(password)
    with engine.begin() as connection:
        if not user_repo.set_password_hash(connection, name, password_hash):
            raise NotFound(f"no user {name!r}")


def login(
    engine: Engine, name: str, password: str, *, hours: float = LOGIN_HOURS
) -> tuple[str, dt.datetime, Principal]:
    """A short-lived API token for a user's name and password: (token, expiry, principal).

    Unknown names, disabled users, users without a password and wrong passwords all get the
    same error after the same work.
    """
    with engine.connect() as connection:
        user = user_repo.user_by_name(connection, name)
    stored = user.password_hash if user is not None else None
    if stored is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password(secrets.token_hex(16)))
        stored_for_timing = _DUMMY_HASH[0]
        verify_password(password, stored_for_timing)
        ok = False
    else:
        ok = verify_password(password, stored)
    if not ok or user is None or user.disabled:
        raise NotAuthenticated("unknown name or wrong password")
    _, token = create_token(engine, user.name, label=LOGIN_LABEL, expires_in_days=hours / 24)
    return token, _now() + dt.timedelta(hours=hours), authenticate(engine, token)


def logout(engine: Engine, token: str) -> None:
    """Revoke the token of a web login (or any token) at once."""
    with engine.begin() as connection:
        token_id = user_repo.token_id_by_hash(connection, hash_token(token))
        if token_id is None or not user_repo.revoke_token(connection, token_id, _now()):
            raise NotAuthenticated("the bearer token is unknown or revoked already")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=64 * 1024 * 1024
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
