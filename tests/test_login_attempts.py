"""Password logins: every attempt audited, and a back-off per client kept in PostgreSQL (so that
every server process shares it) that answers 429 with Retry-After without telling whether a name
exists, and without locking the real user out."""

from __future__ import annotations

import ipaddress
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from api_helpers import assert_error, audit_rows, bearer
from fastapi.testclient import TestClient
from live_server import live_server
from sqlalchemy import Engine, func, select, update

from api.app import create_app
from api.middleware import forwarded_client
from bingeo.db.models import LoginAttempt, Role, User
from bingeo.errors import NotAuthenticated, TooManyAttempts
from bingeo.services import users as service
from bingeo.settings import Settings

PASSWORD = "correct horse battery"
WRONG = "not the password at all"
ATTEMPTS = LoginAttempt.__table__
USERS = User.__table__


def _users(db: Engine) -> None:
    service.add_user(db, "root", Role.admin, password=PASSWORD)
    service.add_user(db, "ann", Role.police_analyst, police_zone_code="5388", password=PASSWORD)
    service.add_user(db, "off", Role.police_officer, police_zone_code="5388", password=PASSWORD)
    service.add_user(db, "tokens-only", Role.police_analyst, police_zone_code="5388")
    with db.begin() as connection:
        connection.execute(update(USERS).where(USERS.c.name == "off").values(disabled=True))


def _app(settings: Settings, *, client: str = "testclient", **limits: float) -> TestClient:
    # A first wait of 10 minutes: long enough that no test outruns it by being slow.
    changed = {
        "login_max_failures": 3,
        "login_max_failures_per_client": 50,
        "login_backoff_s": 600,
        "login_backoff_max_s": 3600,
        **limits,
    }
    return TestClient(create_app(settings.model_copy(update=changed)), client=(client, 50000))


def _login(client: TestClient, name: str, password: str):
    return client.post("/auth/login", json={"name": name, "password": password})


def test_every_login_is_audited_with_name_client_and_reason(db: Engine, settings: Settings) -> None:
    _users(db)
    with _app(settings) as client:
        tried = {
            ("ann", WRONG): "wrong_password",
            ("nobody", PASSWORD): "unknown_user",
            ("off", PASSWORD): "disabled",
            ("tokens-only", PASSWORD): "no_password",
        }
        request_ids = {}
        for (name, password), _ in tried.items():
            answer = _login(client, name, password)
            assert_error(answer, 401, "not_authenticated")
            assert answer.json()["detail"] == "unknown name or wrong password"
            request_ids[name] = answer.headers["x-request-id"]
        accepted = _login(client, "ann", PASSWORD)
        assert accepted.status_code == 200, accepted.text
        token = accepted.json()["token"]
        admin = bearer(_login(client, "root", PASSWORD).json()["token"])

        # Readable through the audit API by admins only, filtered by the name tried.
        assert_error(client.get("/audit", params={"action": "login"}, headers=bearer(token)), 403)
        page = client.get("/audit", params={"action": "login", "limit": 100}, headers=admin)
        assert page.status_code == 200, page.text
        entries = page.json()["entries"]
        assert page.json()["total"] == 6 == len(entries)
        assert PASSWORD not in page.text and WRONG not in page.text
        refused = {e["user_name"]: e for e in entries if e["outcome"] == "refused"}
        assert {name: e["details"]["reason"] for name, e in refused.items()} == {
            name: reason for (name, _), reason in tried.items()
        }
        for name, entry in refused.items():
            assert entry["client"] == "testclient"
            assert entry["request_id"] == request_ids[name]
            assert entry["role"] is None  # a refused caller proved no role
            assert entry["object_type"] == "user"
            assert entry["at"]
        assert refused["nobody"]["user_id"] is None and refused["nobody"]["object_id"] is None
        assert refused["ann"]["user_id"] is not None
        only_ann = client.get("/audit", params={"action": "login", "user": "ann"}, headers=admin)
        outcomes = [e["outcome"] for e in only_ann.json()["entries"]]
        assert outcomes == ["allowed", "refused"]  # newest first
        ok = only_ann.json()["entries"][0]
        assert ok["role"] == "police_analyst" and ok["scope"] == "police_zone:5388"
        assert ok["client"] == "testclient" and ok["details"] is None
    rows = audit_rows(db, action="login")
    assert all(PASSWORD not in json.dumps(r, default=str) for r in rows)
    assert all(WRONG not in json.dumps(r, default=str) for r in rows)


def test_failures_slow_the_failing_client_alike_for_unknown_names_not_the_user(
    db: Engine, settings: Settings
) -> None:
    _users(db)
    with _app(settings, login_window_s=900) as client:
        answers = {}
        for name in ("ann", "nobody"):
            for _ in range(3):
                assert_error(_login(client, name, WRONG), 401, "not_authenticated")
            # The failing client waits: even the right password is refused before it is looked at.
            answers[name] = _login(client, name, PASSWORD)
        for answer in answers.values():
            body = assert_error(answer, 429, "too_many_attempts")
            assert "too many failed logins" in body["detail"]
            assert 590 <= int(answer.headers["retry-after"]) <= 600
        # The same answer whether the name exists or not.
        assert answers["ann"].json() == answers["nobody"].json()
        assert answers["ann"].headers.keys() == answers["nobody"].headers.keys()
        # Other names are not held back by it.
        assert _login(client, "root", PASSWORD).status_code == 200
        admin = bearer(_login(client, "root", PASSWORD).json()["token"])
    # Nor is the real user, from the address they use: the name is not locked.
    with _app(settings, client="192.0.2.50") as own:
        assert _login(own, "ann", PASSWORD).status_code == 200
    with _app(settings) as client:
        entries = client.get(
            "/audit", params={"action": "login", "user": "ann"}, headers=admin
        ).json()["entries"]
        assert [e["outcome"] for e in entries[:2]] == ["allowed", "refused"]  # newest first
        limited = entries[1]
        assert limited["details"]["reason"] == "rate_limited"
        assert 590 <= limited["details"]["retry_after_s"] <= 600
    # Attempts held back do not lengthen the wait, and are not kept: only real failures count.
    with db.connect() as connection:
        outcomes = connection.execute(
            select(ATTEMPTS.c.outcome, func.count())
            .where(ATTEMPTS.c.user_name == "ann")
            .group_by(ATTEMPTS.c.outcome)
        ).all()
    assert dict(outcomes) == {"failed": 3, "succeeded": 1}


def test_the_limit_is_shared_by_server_processes_and_ends_with_the_window(
    db: Engine, settings: Settings
) -> None:
    _users(db)
    # Two apps with engines of their own: what two server processes share is the database.
    with _app(settings) as first, _app(settings) as second:
        assert_error(_login(first, "ann", WRONG), 401)
        assert_error(_login(second, "ann", WRONG), 401)
        assert_error(_login(first, "ann", WRONG), 401)
        assert_error(_login(second, "ann", PASSWORD), 429, "too_many_attempts")
        # Time passes: the wait after the last failure is over.
        _age(db, "ann", seconds=601)
        assert _login(first, "ann", PASSWORD).status_code == 200
        # A success starts the count for the name again.
        for _ in range(3):
            assert_error(_login(second, "ann", WRONG), 401)
        assert_error(_login(first, "ann", WRONG), 429)
        # Each further failure doubles the wait.
        _age(db, "ann", seconds=601)
        assert_error(_login(first, "ann", WRONG), 401)
        doubled = _login(second, "ann", PASSWORD)
        assert_error(doubled, 429)
        assert 1190 <= int(doubled.headers["retry-after"]) <= 1200
        # Rows older than the window are deleted by the next attempt.
        _age(db, "ann", seconds=settings.login_window_s + 1)
        assert _login(first, "ann", PASSWORD).status_code == 200
    with db.connect() as connection:
        left = connection.execute(select(ATTEMPTS.c.outcome)).scalars().all()
    assert left == ["succeeded"]


def test_failures_per_client_address(db: Engine, settings: Settings) -> None:
    _users(db)
    changed = {
        "login_max_failures": 100,
        "login_max_failures_per_client": 4,
        "login_backoff_s": 600,
    }
    app = create_app(settings.model_copy(update=changed))
    with (
        TestClient(app, client=("192.0.2.7", 40000)) as guesser,
        TestClient(app, client=("192.0.2.8", 40000)) as colleague,
    ):
        for number in range(4):
            assert_error(_login(guesser, f"guess{number}", WRONG), 401)
        assert_error(_login(guesser, "ann", PASSWORD), 429, "too_many_attempts")
        assert _login(colleague, "ann", PASSWORD).status_code == 200
    rows = audit_rows(db, action="login", outcome="refused")
    assert {r["client"] for r in rows} == {"192.0.2.7"}


def test_concurrent_guesses_pass_at_most_the_limit(db: Engine) -> None:
    """Attempts counted only after their own row is committed: however they interleave, no more
    than ``max_failures`` get as far as the password check."""
    _users(db)
    limits = service.LoginLimits(
        max_failures=3, max_failures_per_client=100, window_s=600, backoff_s=600
    )

    def guess(_: int) -> str:
        try:
            service.login(db, "ann", WRONG, limits=limits, client="198.51.100.1")
        except NotAuthenticated:
            return "refused"
        except TooManyAttempts:
            return "limited"
        return "accepted"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(guess, range(16)))
    assert results.count("refused") <= 3
    assert results.count("refused") + results.count("limited") == 16
    # Guessing on one at a time: exactly three wrong passwords are ever checked in the window.
    results += [guess(0) for _ in range(4)]
    assert results.count("refused") == 3 and results[-1] == "limited"
    with pytest.raises(TooManyAttempts):
        service.login(db, "ann", PASSWORD, limits=limits, client="198.51.100.1")
    # The user, from their own address, is not locked out by the guesser.
    token, _, principal = service.login(db, "ann", PASSWORD, limits=limits, client="198.51.100.2")
    assert token and principal.name == "ann"


def test_a_forged_x_forwarded_for_changes_neither_the_audit_nor_the_back_off(
    db: Engine, settings: Settings
) -> None:
    """The real server (uvicorn), reached from loopback, with no trusted proxy configured."""
    _users(db)
    limits = {
        "BINGEO_LOGIN_MAX_FAILURES_PER_CLIENT": "3",
        "BINGEO_LOGIN_BACKOFF_S": "600",
        "BINGEO_TRUSTED_PROXIES": "",
    }
    with live_server(settings, serve=[], **limits) as base:
        answers = [
            httpx.post(
                f"{base}/auth/login",
                json={"name": f"guess{number}", "password": WRONG},
                headers={"X-Forwarded-For": f"203.0.113.{number + 1}"},
            )
            for number in range(4)
        ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    rows = audit_rows(db, action="login")
    assert {r["client"] for r in rows} == {"127.0.0.1"}


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(
    db: Engine, settings: Settings
) -> None:
    _users(db)
    trusted = settings.model_copy(update={"trusted_proxies": ("10.0.0.0/8",)})
    app = create_app(trusted)
    chain = {"X-Forwarded-For": "198.51.100.66, 203.0.113.5, 10.9.9.9"}
    with (
        TestClient(app, client=("10.1.2.3", 4000)) as proxy,
        TestClient(app, client=("192.0.2.9", 4000)) as direct,
    ):
        assert_error(
            proxy.post("/auth/login", json={"name": "a", "password": WRONG}, headers=chain), 401
        )
        assert_error(
            direct.post("/auth/login", json={"name": "b", "password": WRONG}, headers=chain), 401
        )
    clients = {r["user_name"]: r["client"] for r in audit_rows(db, action="login")}
    # Through the proxy: the rightmost hop it did not add itself; the leftmost is the client's
    # own claim. Straight from an untrusted peer: the peer.
    assert clients == {"a": "203.0.113.5", "b": "192.0.2.9"}
    nets = tuple(ipaddress.ip_network(n) for n in trusted.trusted_proxies)
    assert forwarded_client("10.0.0.1", ["not-an-address", "10.0.0.2"], nets) == "10.0.0.2"
    assert forwarded_client("10.0.0.1", ["10.0.0.3"], nets) == "10.0.0.3"
    assert forwarded_client("192.0.2.1", ["203.0.113.1"], nets) == "192.0.2.1"


def _age(db: Engine, name: str, *, seconds: float, oldest: int | None = None) -> None:
    """Move attempts of ``name`` (all, or the ``oldest`` n) back in time."""
    ids = select(ATTEMPTS.c.id).where(ATTEMPTS.c.user_name == name).order_by(ATTEMPTS.c.at)
    if oldest is not None:
        ids = ids.limit(oldest)
    with db.begin() as connection:
        connection.execute(
            update(ATTEMPTS)
            .where(ATTEMPTS.c.id.in_(ids.scalar_subquery()))
            .values(at=ATTEMPTS.c.at - func.make_interval(0, 0, 0, 0, 0, 0, seconds))
        )
