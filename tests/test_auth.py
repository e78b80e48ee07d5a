"""Password login for the web app: scrypt hashes, login, logout, /auth/me, the CLI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from api_helpers import assert_error, bearer, square
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api.app import create_app
from bingeo.db.models import ApiToken, Role, User
from bingeo.errors import InvalidInput, NotAuthenticated, NotFound
from bingeo.services import users as service
from bingeo.settings import Settings

PASSWORD = "correct horse battery"
LIMITS = service.LoginLimits(max_failures=100, max_failures_per_client=100, window_s=900)
TOKENS = ApiToken.__table__
USERS = User.__table__


def test_hashes_are_salted_scrypt_and_verified() -> None:
    first = service.hash_password(PASSWORD)
    second = service.hash_password(PASSWORD)
    assert first != second  # a fresh salt each time
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    assert PASSWORD not in first
    assert service.verify_password(PASSWORD, first)
    assert service.verify_password(PASSWORD, second)
    assert not service.verify_password(PASSWORD + "!", first)
    assert not service.verify_password(PASSWORD, None)
    assert not service.verify_password(PASSWORD, "scrypt$garbage")
    assert not service.verify_password(PASSWORD, first.replace("scrypt", "md5"))
    with pytest.raises(InvalidInput, match="at least"):
        service.hash_password("short")


def test_login_gives_a_short_lived_token_and_logout_revokes_it(db: Engine) -> None:
    service.add_user(db, "ann", Role.police_officer, police_zone_code="5388", password=PASSWORD)
    before = dt.datetime.now(dt.UTC)
    token, expires_at, principal = service.login(db, "ann", PASSWORD, limits=LIMITS)
    assert principal.name == "ann" and principal.role == Role.police_officer
    assert principal.police_zone_code == "5388"
    assert service.authenticate(db, token).name == "ann"
    with db.connect() as connection:
        row = connection.execute(select(TOKENS)).one()
    assert row.label == "web login"
    lifetime = row.expires_at - before
    assert dt.timedelta(hours=7.9) < lifetime < dt.timedelta(hours=8.1)
    assert abs((expires_at - row.expires_at).total_seconds()) < 5
    service.logout(db, token)
    with pytest.raises(NotAuthenticated):
        service.authenticate(db, token)
    with pytest.raises(NotAuthenticated):
        service.logout(db, token)


def test_login_refusals_look_alike(db: Engine) -> None:
    service.add_user(db, "bob", Role.police_analyst, police_zone_code="5388", password=PASSWORD)
    service.add_user(db, "tokens-only", Role.police_analyst, police_zone_code="5388")
    messages = set()
    for name, password in (
        ("bob", "wrong password!"),
        ("nobody", PASSWORD),
        ("tokens-only", PASSWORD),
        ("bob", ""),
    ):
        with pytest.raises(NotAuthenticated) as refused:
            service.login(db, name, password, limits=LIMITS)
        messages.add(str(refused.value))
    assert messages == {"unknown name or wrong password"}
    with db.begin() as connection:
        connection.execute(update(USERS).where(USERS.c.name == "bob").values(disabled=True))
    with pytest.raises(NotAuthenticated):
        service.login(db, "bob", PASSWORD, limits=LIMITS)
    with db.connect() as connection:
        assert connection.execute(select(TOKENS)).all() == []


def test_set_password_and_user_list_without_hashes(db: Engine) -> None:
    service.add_user(db, "cis", Role.municipality_planner, nis_code="24011")
    with pytest.raises(NotAuthenticated):
        service.login(db, "cis", PASSWORD, limits=LIMITS)
    service.set_password(db, "cis", PASSWORD)
    assert service.login(db, "cis", PASSWORD, limits=LIMITS)[2].nis_code == "24011"
    service.set_password(db, "cis", "another password")
    with pytest.raises(NotAuthenticated):
        service.login(db, "cis", PASSWORD, limits=LIMITS)
    with pytest.raises(NotFound):
        service.set_password(db, "nobody", PASSWORD)
    assert all("password_hash" not in user for user in service.list_users(db))


def test_auth_api(db: Engine, settings: Settings) -> None:
    service.add_user(db, "dirk", Role.police_analyst, police_zone_code="5388", password=PASSWORD)
    with TestClient(create_app(settings)) as client:
        assert_error(client.get("/auth/me"), 401, "not_authenticated")
        refused = client.post("/auth/login", json={"name": "dirk", "password": "nope nope nope"})
        assert_error(refused, 401, "not_authenticated")
        assert_error(client.post("/auth/login", json={"name": "dirk"}), 422)
        answer = client.post("/auth/login", json={"name": "dirk", "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "bearer" and body["token"].startswith("bgo_")
        assert body["user"] == {
            "name": "dirk",
            "role": "police_analyst",
            "police_zone_code": "5388",
            "nis_code": None,
            "network_id": None,
            "scope": "police_zone:5388",
        }
        headers = bearer(body["token"])
        me = client.get("/auth/me", headers=headers)
        assert me.status_code == 200 and me.json() == body["user"]
        # Neither a browser nor a proxy keeps an answer that holds a token or a user.
        assert answer.headers["cache-control"] == "no-store"
        assert me.headers["cache-control"] == "no-store"
        # The token works for the rest of the API, within the role: analysts send no alerts.
        preview = {"target": {"area": square()}, "messages": {"nl": "Let op"}}
        assert_error(client.post("/alerts/preview", json=preview), 401)
        assert_error(client.post("/alerts/preview", json=preview, headers=headers), 403)
        assert_error(client.post("/auth/logout"), 401)
        logout = client.post("/auth/logout", headers=headers)
        assert logout.status_code == 204 and logout.headers["cache-control"] == "no-store"
        assert_error(client.get("/auth/me", headers=headers), 401)
        assert_error(client.post("/auth/logout", headers=headers), 401)


def test_web_pages_config_and_files(db: Engine, settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"tiles": ""}))) as client:
        page = client.get("/app")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "https://" not in page.text and "http://" not in page.text
        assert client.get("/app/config.json").json()["tiles"] is None
        for name in ("app.js", "app.css", "i18n.js", "favicon.svg"):
            assert client.get(f"/app/files/{name}").status_code == 200, name
        for name in ("..%2Froutes%2Fweb.py", "%2E%2E", ".hidden.js", "nothing.js", "web.py"):
            assert client.get(f"/app/files/{name}").status_code == 404, name
    template = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"
    with TestClient(create_app(settings.model_copy(update={"tiles": template}))) as client:
        assert client.get("/app/config.json").json()["tiles"]["url"] == template
        assert (
            "img-src 'self' data: http://127.0.0.1:9;"
            in client.get("/app").headers["content-security-policy"]
        )


def test_cli_passwords_from_stdin(db: Engine, settings: Settings) -> None:
    env = os.environ | {
        "BINGEO_DATABASE_NAME": settings.database_name,
        "BINGEO_DATA_DIR": str(settings.data_dir),
    }
    if settings.database_url:
        env["BINGEO_DATABASE_URL"] = settings.database_url
    bingeo = str(Path(sys.executable).parent / "bingeo")

    def run(*args: str, stdin: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [bingeo, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )

    added = run(
        "users", "add", "eva", "--role", "coordinator", "--network", "1", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    # No network 1 exists: refused, and nothing stored.
    assert added.returncode != 0 and "exists already, or its network" in added.stderr
    added = run(
        "users", "add", "eva", "--role", "police_officer", "--zone", "5388", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert service.login(db, "eva", PASSWORD, limits=LIMITS)[2].role == Role.police_officer
    changed = run("users", "set-password", "eva", "--password-stdin", stdin="new password 42\n")
    assert changed.returncode == 0, changed.stderr
    assert service.login(db, "eva", "new password 42", limits=LIMITS)[2].name == "eva"
    short = run("users", "set-password", "eva", "--password-stdin", stdin="short\n")
    assert short.returncode != 0 and "at least 10 characters" in short.stderr
