"""The API's cache of token principals: used only while it listens, emptied by every change to
users and tokens (plain SQL on another connection included), never past a token's expiry."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from api_helpers import assert_error, bearer
from fastapi.testclient import TestClient
from live_server import wait_until
from sqlalchemy import Engine, event, text

from api.app import create_app
from bingeo.db import migrate
from bingeo.db.models import Role
from bingeo.errors import NotAuthenticated
from bingeo.services import users as service
from bingeo.services.principal_cache import PrincipalCache
from bingeo.settings import Settings

# Seconds within which a change committed elsewhere must be seen.
POLL_S = 2.0


@contextmanager
def token_lookups(engine: Engine) -> Iterator[list[str]]:
    """The statements that read ``api_tokens`` through ``engine`` while inside."""
    seen: list[str] = []

    def count(connection, cursor, statement, parameters, context, executemany) -> None:
        if "api_tokens" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def app_client(db: Engine, settings: Settings) -> Iterator[TestClient]:
    """A client of the app whose principal cache listens."""
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: client.app.state.principals.listening, POLL_S, "listening")
        yield client


def cached_request(client: TestClient, token: str) -> dict:
    """/auth/me with ``token``: looked up once, then answered from the cache (asserted)."""
    with token_lookups(client.app.state.engine) as lookups:
        first = client.get("/auth/me", headers=bearer(token))
        assert first.status_code == 200, first.text
        assert len(lookups) == 1
        second = client.get("/auth/me", headers=bearer(token))
        assert second.status_code == 200
        assert len(lookups) == 1, "the second request was not answered from the cache"
    assert second.json() == first.json()
    return second.json()


def refused(client: TestClient, token: str) -> bool:
    """Whether /auth/me refuses ``token``."""
    return client.get("/auth/me", headers=bearer(token)).status_code == 401


def listener_pid(engine: Engine) -> int | None:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'bingeo-principals' "
                "AND datname = current_database()"
            )
        ).scalar_one_or_none()


def test_cached_token_answers_without_a_lookup_and_unknown_tokens_are_never_cached(
    app_client: TestClient, db: Engine
) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token = service.create_token(db, "ann")[1]
    assert cached_request(app_client, token)["name"] == "ann"
    unknown = service.TOKEN_PREFIX + "x" * 43
    with token_lookups(app_client.app.state.engine) as lookups:
        for _ in range(2):
            assert_error(app_client.get("/auth/me", headers=bearer(unknown)), 401)
        assert len(lookups) == 2


STATEMENTS = {
    "revoked": "UPDATE api_tokens SET revoked_at = now()",
    "user disabled": "UPDATE users SET disabled = true",
    "user deleted": "DELETE FROM users",
    "tokens emptied": "TRUNCATE api_tokens",
}


@pytest.mark.parametrize("change", sorted(STATEMENTS))
def test_sql_on_another_connection_refuses_a_cached_token(
    app_client: TestClient, db: Engine, change: str
) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token = service.create_token(db, "ann")[1]
    cached_request(app_client, token)
    with db.begin() as connection:
        connection.execute(text(STATEMENTS[change]))
    wait_until(lambda: refused(app_client, token), POLL_S, "the token refused")
    assert_error(app_client.get("/auth/me", headers=bearer(token)), 401, "not_authenticated")


def test_role_changed_by_sql_is_seen(app_client: TestClient, db: Engine) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token = service.create_token(db, "ann")[1]
    assert cached_request(app_client, token)["role"] == "police_analyst"
    with db.begin() as connection:
        connection.execute(text("UPDATE users SET role = 'police_officer'"))

    def role() -> str:
        return app_client.get("/auth/me", headers=bearer(token)).json()["role"]

    wait_until(lambda: role() == "police_officer", POLL_S, "the new role")


def test_revoking_through_the_service_empties_the_cache_at_once(
    app_client: TestClient, db: Engine
) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token_id, token = service.create_token(db, "ann")
    cached_request(app_client, token)
    cache = app_client.app.state.principals
    assert cache.get(service.hash_token(token), dt.datetime.now(dt.UTC)) is not None
    service.revoke_token(db, token_id)
    # Not waiting for the notification: emptied before revoke_token returned.
    assert cache.get(service.hash_token(token), dt.datetime.now(dt.UTC)) is None
    assert_error(app_client.get("/auth/me", headers=bearer(token)), 401, "not_authenticated")


def test_expired_token_in_the_cache_is_refused(app_client: TestClient, db: Engine) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    lifetime_s = 3.0
    token = service.create_token(db, "ann", expires_in_days=lifetime_s / 86400)[1]
    expires = time.monotonic() + lifetime_s
    cached_request(app_client, token)
    assert time.monotonic() < expires, "the machine was too slow to cache the token in time"
    cache, token_hash = app_client.app.state.principals, service.hash_token(token)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime_s)
    assert cache.get(token_hash, later) is None  # checked against the clock, and dropped
    cached_request(app_client, token)
    time.sleep(max(0.0, expires - time.monotonic()) + 0.05)
    assert_error(app_client.get("/auth/me", headers=bearer(token)), 401, "not_authenticated")


def test_listener_killed_empties_the_cache_and_listens_again(
    app_client: TestClient, db: Engine
) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token = service.create_token(db, "ann")[1]
    cached_request(app_client, token)
    cache = app_client.app.state.principals
    first_pid = listener_pid(db)
    assert first_pid is not None
    with db.connect() as connection:
        assert connection.execute(text(f"SELECT pg_terminate_backend({first_pid})")).scalar()
    # A new backend listens, and the cache lost what it held when the old one died.
    wait_until(
        lambda: cache.listening and listener_pid(db) not in (None, first_pid),
        POLL_S,
        "a new listener",
    )
    assert cache.get(service.hash_token(token), dt.datetime.now(dt.UTC)) is None
    cached_request(app_client, token)
    with db.begin() as connection:
        connection.execute(text("UPDATE api_tokens SET revoked_at = now()"))
    wait_until(lambda: refused(app_client, token), POLL_S, "the token refused")


def test_a_cache_that_does_not_listen_is_not_used(db: Engine) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token = service.create_token(db, "ann")[1]
    cache = PrincipalCache()  # no listener
    with token_lookups(db) as lookups:
        for _ in range(2):
            assert service.authenticate(db, token, cache=cache).name == "ann"
        assert len(lookups) == 2
    assert cache.get(service.hash_token(token), dt.datetime.now(dt.UTC)) is None
    assert cache.ticket() is None


def test_a_lookup_overtaken_by_a_change_is_not_stored(db: Engine) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token = service.create_token(db, "ann")[1]
    cache = PrincipalCache.listening_to(db)
    try:
        wait_until(lambda: cache.listening, POLL_S, "listening")
        token_hash = service.hash_token(token)
        ticket = cache.ticket()
        principal = service.authenticate(db, token)
        cache.forget()  # a notification arrived during the lookup
        cache.put(ticket, token_hash, principal, None)
        assert cache.get(token_hash, dt.datetime.now(dt.UTC)) is None
        cache.put(cache.ticket(), token_hash, principal, None)
        assert cache.get(token_hash, dt.datetime.now(dt.UTC)) == principal
    finally:
        cache.close()
    assert not cache.listening
    assert cache.get(token_hash, dt.datetime.now(dt.UTC)) is None


def test_no_listening_without_the_triggers(db: Engine, caplog) -> None:
    migrate.downgrade(db, "0013")
    try:
        cache = PrincipalCache.listening_to(db)
        try:
            wait_until(lambda: "bingeo db upgrade" in caplog.text, POLL_S, "the triggers checked")
            assert not cache.listening
        finally:
            cache.close()
    finally:
        migrate.upgrade(db)
    cache = PrincipalCache.listening_to(db)
    try:
        wait_until(lambda: cache.listening, POLL_S, "listening")
    finally:
        cache.close()


def test_without_the_api_nothing_is_cached(db: Engine) -> None:
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388")
    token = service.create_token(db, "ann")[1]
    assert service.authenticate(db, token).name == "ann"
    with db.begin() as connection:
        connection.execute(text("UPDATE users SET disabled = true"))
    with pytest.raises(NotAuthenticated):
        service.authenticate(db, token)
