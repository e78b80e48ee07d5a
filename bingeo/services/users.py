"""Users and API tokens: created from the CLI, checked on every API request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bingeo.access import ANONYMOUS, Actor, Principal
from bingeo.db import login_attempts as attempt_repo
from bingeo.db import users as user_repo
from bingeo.db.engine import lone_reads
from bingeo.db.models import Role
from bingeo.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyAttempts
from bingeo.services.audit import record, record_refusal
from bingeo.services.principal_cache import PrincipalCache, forget_principals
from bingeo.settings import Settings

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
    if expires_in_days is not None and expires_in_days <= 0:
        raise InvalidInput("expires_in_days must be positive")
    with engine.begin() as connection:
        user = user_repo.user_by_name(connection, user_name)
        if user is None:
            raise NotFound(f"no user {user_name!r}")
        token_id, token, _ = _new_token(connection, user.id, label, expires_in_days)
    return token_id, token


def revoke_token(engine: Engine, token_id: int) -> None:
    """Revoke a token at once."""
    with engine.begin() as connection:
        if not user_repo.revoke_token(connection, token_id, _now()):
            raise NotFound(f"no live token {token_id}")
    forget_principals()


def list_users(engine: Engine) -> list[dict]:
    """Every user with role and scope (no tokens)."""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in user_repo.list_users(connection)]


def list_tokens(engine: Engine) -> list[dict]:
    """Every token's id, owner, label and validity (never the token or its hash)."""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in user_repo.list_tokens(connection)]


def authenticate(
    engine: Engine, token: str | None, *, cache: PrincipalCache | None = None
) -> Principal:
    """The principal of a bearer token; anonymous without one, an error for a bad one.

    With ``cache`` (the API's), a live token seen before is answered without the database.
    """
    known = known_principal(token, cache)
    return known if known is not None else look_up_principal(engine, token, cache=cache)


def look_up_principal(
    engine: Engine, token: str, *, cache: PrincipalCache | None = None
) -> Principal:
    """The principal of a token, read from the database (and stored in ``cache``): what
    ``authenticate`` does when ``known_principal`` has no answer."""
    token_hash, now = hash_token(token), _now()
    ticket = cache.ticket() if cache is not None else None
    # One round trip: a lone read needs no transaction.
    with lone_reads(engine) as connection:
        user = user_repo.user_for_token(connection, token_hash, now)
    if user is None:
        raise NotAuthenticated("the bearer token is unknown, expired or revoked")
    principal = principal_of(user)
    if cache is not None:
        cache.put(ticket, token_hash, principal, user.token_expires_at)
    return principal


def known_principal(token: str | None, cache: PrincipalCache | None) -> Principal | None:
    """The principal of ``token`` when it needs no database: anonymous without a token, the
    cached one of a live token seen before; None when ``authenticate`` must look it up."""
    if not token:
        return ANONYMOUS
    return cache.get(hash_token(token), _now()) if cache is not None else None


def principal_of(user) -> Principal:
    """The principal of a user row: its role and the scope the role applies to."""
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


@dataclass(frozen=True)
class LoginLimits:
    """The login back-off, kept per client address: failed attempts (within ``window_s``) for one
    name from one client, and from one client for any name. Past ``max_failures`` (per client
    and name; the count restarts after that client's successful login to that name) or
    ``max_failures_per_client``, the client waits ``backoff_s``, doubled with each further
    failure up to ``backoff_max_s``, after its last failure. Nobody else waits: the user
    logging in from another address is not locked out."""

    max_failures: int
    max_failures_per_client: int
    window_s: float
    backoff_s: float = 1.0
    backoff_max_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        """The limits configured in ``settings``."""
        return cls(
            settings.login_max_failures,
            settings.login_max_failures_per_client,
            settings.login_window_s,
            settings.login_backoff_s,
            settings.login_backoff_max_s,
        )

    def wait_s(self, failures: list[dt.datetime], free: int, now: dt.datetime) -> int:
        """Seconds this client still waits, given its other failures (oldest first) for a key
        that allows ``free`` failures; 0 when it may try now."""
        if len(failures) < free:
            return 0
        delay = min(self.backoff_max_s, self.backoff_s * 2 ** (len(failures) - free))
        left = (failures[-1] + dt.timedelta(seconds=delay) - now).total_seconds()
        return max(0, math.ceil(left))


def login(
    engine: Engine,
    name: str,
    password: str,
    *,
    limits: LoginLimits,
    client: str | None = None,
    request_id: str | None = None,
    hours: float = LOGIN_HOURS,
) -> tuple[str, dt.datetime, Principal]:
    """A short-lived API token for a user's name and password: (token, expiry, principal).

    Unknown names, disabled users, users without a password and wrong passwords all get the
    same error after the same work. A client in its back-off (``limits``) is refused with
    ``TooManyAttempts`` before the password is looked at, whether the name exists or not.
    Every attempt, accepted or refused, is audited with the name tried, the client and the reason
    (never the password).
    """
    name = name[:128]
    client = client[:128] if client else None
    with engine.begin() as connection:
        attempt_id = attempt_repo.begin(
            connection, user_name=name, client=client, window_s=limits.window_s
        )
    # Counted after the pending attempt is committed, so that concurrent attempts (in any
    # process) see each other: at most ``max_failures`` pass however they interleave.
    with engine.connect() as connection:
        by_pair, by_client, now = attempt_repo.counted_failures(
            connection,
            attempt_id=attempt_id,
            user_name=name,
            client=client,
            window_s=limits.window_s,
        )
        user = user_repo.user_by_name(connection, name)
    retry_after_s = max(
        limits.wait_s(by_pair, limits.max_failures, now),
        limits.wait_s(by_client, limits.max_failures_per_client, now),
    )
    actor = Actor(
        principal=Principal(user_id=user.id if user else None, name=name),
        request_id=request_id,
        client=client,
    )
    if retry_after_s:
        with engine.begin() as connection:
            # A held-back attempt counts for nothing, and a flood of them is audited once a
            # minute per client, counted.
            attempt_repo.forget(connection, attempt_id)
            record_refusal(
                connection,
                actor,
                "login held back",
                action="login",
                object_type="user",
                details={"reason": "rate_limited", "retry_after_s": retry_after_s},
            )
        raise TooManyAttempts(
            f"too many failed logins; try again in {retry_after_s} s", retry_after_s
        )
    reason = _refusal(user, password)
    if reason:
        _finish_login(engine, attempt_id, actor, reason)
        raise NotAuthenticated("unknown name or wrong password", audited=True)
    with engine.begin() as connection:
        _, token, expires_at = _new_token(connection, user.id, LOGIN_LABEL, hours / 24)
        principal = principal_of(user)
        _audit_login(connection, attempt_id, Actor(principal, request_id, client), None)
    return token, expires_at, principal


def logout(engine: Engine, token: str) -> None:
    """Revoke the token of a web login (or any token) at once."""
    with engine.begin() as connection:
        token_id = user_repo.token_id_by_hash(connection, hash_token(token))
        if token_id is None or not user_repo.revoke_token(connection, token_id, _now()):
            raise NotAuthenticated("the bearer token is unknown or revoked already")
    forget_principals()


def _refusal(user, password: str) -> str | None:
    """Why a login is refused (for the audit trail only), or None; always one scrypt."""
    stored = user.password_hash if user is not None else None
    if stored is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password(secrets.token_hex(16)))
        verify_password(password, _DUMMY_HASH[0])
        return "unknown_user" if user is None else "no_password"
    if not verify_password(password, stored):
        return "wrong_password"
    return "disabled" if user.disabled else None


def _finish_login(
    engine: Engine, attempt_id: int, actor: Actor, reason: str, **details: object
) -> None:
    with engine.begin() as connection:
        _audit_login(connection, attempt_id, actor, reason, **details)


def _audit_login(
    connection: Connection, attempt_id: int, actor: Actor, reason: str | None, **details: object
) -> None:
    """The attempt's outcome for the rate limit and its audit entry, in one transaction."""
    outcome = "succeeded" if reason is None else "failed"
    attempt_repo.finish(connection, attempt_id, outcome)
    record(
        connection,
        actor,
        "login",
        "user",
        actor.principal.user_id,
        outcome="allowed" if reason is None else "refused",
        details={"reason": reason, **details} if reason else None,
    )


def _new_token(
    connection: Connection, user_id: int, label: str | None, expires_in_days: float | None
) -> tuple[int, str, dt.datetime | None]:
    """Store a new token of ``user_id``: (id, the token, expiry)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = None if expires_in_days is None else _now() + dt.timedelta(days=expires_in_days)
    token_id = user_repo.add_token(
        connection,
        user_id=user_id,
        token_hash=hash_token(token),
        label=label,
        expires_at=expires_at,
    )
    return token_id, token, expires_at


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=64 * 1024 * 1024
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
