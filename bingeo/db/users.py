"""Repository of users and their API tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select, update

from bingeo.db.models import ApiToken, Role, User

USERS = User.__table__
TOKENS = ApiToken.__table__
# Migration 0014: these triggers notify this channel at the commit of every statement that
# writes users or api_tokens.
CHANGES_CHANNEL = "principals_changed"
CHANGE_TRIGGERS = ("users_notify_change", "api_tokens_notify_change")


def add_user(
    connection: Connection,
    *,
    name: str,
    role: Role,
    police_zone_code: str | None,
    nis_code: str | None,
    network_id: int | None,
) -> int:
    """Insert a user and return its id."""
    return connection.execute(
        insert(USERS)
        .values(
            name=name,
            role=role,
            police_zone_code=police_zone_code,
            nis_code=nis_code,
            network_id=network_id,
        )
        .returning(USERS.c.id)
    ).scalar_one()


def user_by_name(connection: Connection, name: str):
    """The user row named ``name`` or None."""
    return connection.execute(select(USERS).where(USERS.c.name == name)).first()


def list_users(connection: Connection) -> list:
    """Every user, by name (without password hashes)."""
    columns = [c for c in USERS.c if c.name != "password_hash"]
    return list(connection.execute(select(*columns).order_by(USERS.c.name)))


def set_password_hash(connection: Connection, name: str, password_hash: str | None) -> bool:
    """Store (or clear) a user's password hash; False when no such user exists."""
    result = connection.execute(
        update(USERS).where(USERS.c.name == name).values(password_hash=password_hash)
    )
    return result.rowcount == 1


def token_id_by_hash(connection: Connection, token_hash: str) -> int | None:
    """The id of the token with ``token_hash`` (live or not), or None."""
    return connection.execute(
        select(TOKENS.c.id).where(TOKENS.c.token_hash == token_hash)
    ).scalar_one_or_none()


def add_token(
    connection: Connection,
    *,
    user_id: int,
    token_hash: str,
    label: str | None,
    expires_at: dt.datetime | None,
) -> int:
    """Store a token hash and return the token's id."""
    return connection.execute(
        insert(TOKENS)
        .values(user_id=user_id, token_hash=token_hash, label=label, expires_at=expires_at)
        .returning(TOKENS.c.id)
    ).scalar_one()


def user_for_token(connection: Connection, token_hash: str, now: dt.datetime):
    """The enabled user whose live (not expired, not revoked) token has ``token_hash``, with
    the token's expiry as ``token_expires_at``."""
    return connection.execute(
        select(USERS, TOKENS.c.expires_at.label("token_expires_at"))
        .join(TOKENS, TOKENS.c.user_id == USERS.c.id)
        .where(
            TOKENS.c.token_hash == token_hash,
            TOKENS.c.revoked_at.is_(None),
            (TOKENS.c.expires_at.is_(None)) | (TOKENS.c.expires_at > now),
            USERS.c.disabled.is_(False),
        )
    ).first()


def revoke_token(connection: Connection, token_id: int, now: dt.datetime) -> bool:
    """Mark a token revoked; False when no such live token exists."""
    result = connection.execute(
        update(TOKENS)
        .where(TOKENS.c.id == token_id, TOKENS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def list_tokens(connection: Connection, user_id: int | None = None) -> list:
    """Tokens (without hashes) of one user or of everyone."""
    query = select(
        TOKENS.c.id,
        TOKENS.c.user_id,
        USERS.c.name,
        TOKENS.c.label,
        TOKENS.c.created_at,
        TOKENS.c.expires_at,
        TOKENS.c.revoked_at,
    ).join(USERS, USERS.c.id == TOKENS.c.user_id)
    if user_id is not None:
        query = query.where(TOKENS.c.user_id == user_id)
    return list(connection.execute(query.order_by(TOKENS.c.id)))
