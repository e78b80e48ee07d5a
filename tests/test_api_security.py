"""API security: tokens, roles and scopes across zones and municipalities, audit, error shape."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import selectors
import socket
import tempfile
import threading
from collections import Counter

import httpx
import pytest
from api_helpers import (
    CENTRE_X,
    CENTRE_Y,
    NIS_X,
    NIS_Y,
    PUBLIC_PROPERTIES,
    World,
    assert_error,
    audit_rows,
    bearer,
    network_count,
    square,
    star,
)
from fastapi.testclient import TestClient
from live_server import live_server
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from api.errors import without_server_paths
from bingeo.db.models import (
    Address,
    ApiToken,
    AuditEntry,
    ContactRole,
    LoginAttempt,
    Member,
    NetworkContact,
    RefusalCount,
    User,
)
from bingeo.services.users import revoke_token
from bingeo.settings import Settings

# Where municipalities X and Y meet, and a place in neither.
BORDER = (4.73, 50.855)
NOWHERE = (4.50, 50.70)


def new_network(centre=CENTRE_X, **extra) -> dict:
    return {"name": "Nieuw BIN", "kind": "BIN", "geometry": square(centre, 0.002), **extra}


def _member_and_contact(engine, network_id: int) -> None:
    with engine.begin() as connection:
        address_id = connection.execute(
            insert(Address.__table__)
            .values(source_key="sec-1", street="Dorpstraat", house_number="1", geom=None)
            .returning(Address.__table__.c.id)
        ).scalar_one()
        connection.execute(
            insert(Member.__table__).values(
                network_id=network_id,
                address_id=address_id,
                name="Een Lid",
                channels=["email"],
                consent_at=dt.datetime.now(dt.UTC),
            )
        )
        connection.execute(
            insert(NetworkContact.__table__).values(
                network_id=network_id, role=ContactRole.coordinator, name="Een Coördinator"
            )
        )


def _people(engine, network_id: int) -> tuple[int, int]:
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                select(func.count()).select_from(t).where(t.c.network_id == network_id)
            ).scalar_one()
            for t in (Member.__table__, NetworkContact.__table__)
        )


def current_version(client: TestClient, network_id: int) -> str:
    response = client.get(f"/networks/{network_id}")
    assert response.status_code == 200
    return response.headers["ETag"]


# tokens ----------------------------------------------------------------------------------------


def test_tokens_are_stored_hashed(db, world: World) -> None:
    with db.connect() as connection:
        stored = [tuple(r) for r in connection.execute(select(ApiToken.__table__))]
    assert len(stored) == len(world.tokens)
    dump = repr(stored)
    for token in world.tokens.values():
        assert token.startswith("bgo_")
        assert token not in dump


def test_valid_token_is_accepted(client: TestClient, world: World) -> None:
    response = client.get("/audit", headers=world.auth("admin"))
    assert response.status_code == 200


@pytest.mark.parametrize("kind", ["expired", "revoked", "garbage", "empty_user"])
def test_bad_tokens_give_401(client: TestClient, db, world: World, kind: str) -> None:
    token = world.tokens["admin"]
    table = ApiToken.__table__
    if kind == "expired":
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        with db.begin() as connection:
            connection.execute(update(table).values(expires_at=past))
    elif kind == "revoked":
        with db.connect() as connection:
            token_id = connection.execute(
                select(table.c.id).where(table.c.user_id == world.user_ids["admin"])
            ).scalar_one()
        revoke_token(db, token_id)
    elif kind == "garbage":
        token = "bgo_" + "x" * 43
    else:
        with db.begin() as connection:
            connection.execute(update(User.__table__).values(disabled=True))
    for method, path in (("GET", "/audit"), ("GET", "/networks"), ("DELETE", "/networks/1")):
        response = client.request(method, path, headers=bearer(token))
        assert_error(response, 401, "not_authenticated")
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_malformed_authorization_header(client: TestClient, world: World) -> None:
    response = client.get("/audit", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_error(response, 401)


# rules across zones and municipalities ---------------------------------------------------------


def test_anonymous_reads_public_facts_only(client: TestClient, world: World) -> None:
    listing = client.get("/networks")
    assert listing.status_code == 200
    assert listing.headers["content-type"].startswith("application/geo+json")
    features = listing.json()["features"]
    assert {f["id"] for f in features} == {world.net_x, world.net_y}
    one = client.get(f"/networks/{world.net_x}")
    assert one.status_code == 200
    for feature in [*features, one.json()]:
        assert set(feature["properties"]) <= PUBLIC_PROPERTIES
        text_of = repr(feature).lower()
        for personal in ("email", "phone", "contact", "member", "coordinator"):
            assert personal not in text_of


def test_anonymous_cannot_write(client: TestClient, db, world: World) -> None:
    before = network_count(db)
    assert_error(client.post("/networks", json=new_network()), 401, "not_authenticated")
    patch = client.patch(
        f"/networks/{world.net_x}", json={"name": "x"}, headers={"If-Match": '"1"'}
    )
    assert_error(patch, 401)
    assert_error(client.delete(f"/networks/{world.net_x}?version=1"), 401)
    assert network_count(db) == before
    assert client.get(f"/networks/{world.net_x}").json()["properties"]["name"] == "BIN X"


@pytest.mark.parametrize(
    ("user", "own_centre", "own_nis", "other_centre", "other_nis"),
    [
        ("planner_x", CENTRE_X, NIS_X, CENTRE_Y, NIS_Y),
        ("planner_y", CENTRE_Y, NIS_Y, CENTRE_X, NIS_X),
    ],
)
def test_planner_writes_in_own_municipality_only(
    client: TestClient, db, world: World, user, own_centre, own_nis, other_centre, other_nis
) -> None:
    headers = world.auth(user)
    created = client.post("/networks", json=new_network(own_centre), headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["nis_codes"] == [own_nis]
    network_id = created.json()["id"]
    changed = client.patch(
        f"/networks/{network_id}",
        json={"name": "Hernoemd"},
        headers=headers | {"If-Match": created.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    before = network_count(db)
    refused = client.post("/networks", json=new_network(other_centre), headers=headers)
    assert other_nis in assert_error(refused, 403, "forbidden")["detail"]
    # A label naming the caller's own municipality changes nothing: it is refused as input.
    labelled = new_network(other_centre, nis_code=own_nis)
    assert_error(client.post("/networks", json=labelled, headers=headers), 422)
    # Outside every municipality the network is in nobody's scope; across the border it is
    # not wholly in the planner's.
    assert_error(client.post("/networks", json=new_network(NOWHERE), headers=headers), 403)
    assert_error(client.post("/networks", json=new_network(BORDER), headers=headers), 403)
    # A new network starts as an idea; other states come through the lifecycle.
    active = new_network(own_centre, status="active")
    assert_error(client.post("/networks", json=active, headers=headers), 422)
    assert network_count(db) == before


def test_planner_cannot_touch_other_municipality_by_id(
    client: TestClient, db, world: World
) -> None:
    headers = world.auth("planner_x")
    version = current_version(client, world.net_y)
    patch = client.patch(
        f"/networks/{world.net_y}",
        json={"name": "Gekaapt"},
        headers=headers | {"If-Match": version},
    )
    body = assert_error(patch, 403, "forbidden")
    assert NIS_Y in body["detail"]
    delete = client.delete(f"/networks/{world.net_y}", headers=headers | {"If-Match": version})
    assert_error(delete, 403)
    assert client.get(f"/networks/{world.net_y}").json()["properties"]["name"] == "BIN Y"
    refused = audit_rows(db, user_name="planner_x", outcome="refused")
    assert [(r["action"], r["object_id"]) for r in refused] == [
        ("write_network", str(world.net_y)),
        ("write_network", str(world.net_y)),
    ]
    assert all(NIS_Y in r["scope"] for r in refused)
    assert refused[0]["request_id"] == patch.headers["X-Request-Id"]
    assert refused[1]["request_id"] == delete.headers["X-Request-Id"]
    # Every answer says how long the server took.
    assert re.fullmatch(r"app;dur=\d+\.\d", patch.headers["Server-Timing"])


def test_planner_cannot_move_network_into_other_municipality(
    client: TestClient, db, world: World
) -> None:
    headers = world.auth("planner_x") | {"If-Match": current_version(client, world.net_x)}
    url = f"/networks/{world.net_x}"
    moved = client.patch(url, json={"geometry": square(CENTRE_Y, 0.002)}, headers=headers)
    assert_error(moved, 403)
    assert client.get(url).json()["properties"]["nis_code"] == NIS_X
    refused = audit_rows(db, user_name="planner_x", outcome="refused")
    assert len(refused) == 1 and NIS_Y in refused[0]["scope"]
    # nor across the border, nor out of every municipality; labels are not input at all
    for elsewhere in (BORDER, NOWHERE):
        patch = client.patch(url, json={"geometry": square(elsewhere, 0.002)}, headers=headers)
        assert_error(patch, 403)
    assert_error(client.patch(url, json={"nis_code": NIS_X}, headers=headers), 422)
    assert client.get(url).json()["properties"]["version"] == 1


def test_police_analyst_writes_no_network(client: TestClient, db, world: World) -> None:
    """Issue 14: an analyst created networks over another zone and deleted one with its
    members; analysts read aggregates and write nothing, in their own zone too."""
    _member_and_contact(db, world.net_x)
    for user, own in (("analyst_a", world.net_x), ("analyst_b", world.net_y)):
        headers = world.auth(user)
        version = {"If-Match": current_version(client, own)}
        changed = client.patch(
            f"/networks/{own}", json={"name": "Eigen"}, headers=headers | version
        )
        assert_error(changed, 403)
        assert_error(client.delete(f"/networks/{own}", headers=headers | version), 403)
        centre = CENTRE_X if own == world.net_x else CENTRE_Y
        assert_error(client.post("/networks", json=new_network(centre), headers=headers), 403)
    assert network_count(db) == 2
    assert _people(db, world.net_x) == (1, 1)
    assert {r["user_name"] for r in audit_rows(db, outcome="refused")} == {
        "analyst_a",
        "analyst_b",
    }


def test_deleting_a_network_with_people_needs_an_admin_asking(
    client: TestClient, db, world: World
) -> None:
    """Ending a network is a lifecycle step; a delete that would remove people is refused,
    unless an admin asks for it, and the audit says how many people were removed."""
    _member_and_contact(db, world.net_x)
    url = f"/networks/{world.net_x}"
    for user in ("planner_x", "admin"):
        version = {"If-Match": current_version(client, world.net_x)}
        refused = client.delete(url, headers=world.auth(user) | version)
        assert "lifecycle" in assert_error(refused, 409, "network_has_people")["detail"]
    planner_asks = client.delete(
        f"{url}?remove_people=true",
        headers=world.auth("planner_x") | {"If-Match": current_version(client, world.net_x)},
    )
    assert_error(planner_asks, 409, "network_has_people")
    assert _people(db, world.net_x) == (1, 1)
    admin_asks = client.delete(
        f"{url}?remove_people=true",
        headers=world.auth("admin") | {"If-Match": current_version(client, world.net_x)},
    )
    assert admin_asks.status_code == 204, admin_asks.text
    assert _people(db, world.net_x) == (0, 0)
    (entry,) = audit_rows(db, action="delete", object_id=str(world.net_x))
    assert entry["details"] == {"members_removed": 1, "contacts_removed": 1}
    # A network without people is deleted by its planner as before.
    empty = client.post("/networks", json=new_network(), headers=world.auth("planner_x"))
    version = {"If-Match": empty.headers["ETag"]}
    gone = client.delete(
        f"/networks/{empty.json()['id']}", headers=world.auth("planner_x") | version
    )
    assert gone.status_code == 204


@pytest.mark.parametrize("user", ["officer_a", "coordinator_x"])
def test_officer_and_coordinator_cannot_write(
    client: TestClient, db, world: World, user: str
) -> None:
    headers = world.auth(user)
    before = network_count(db)
    created = client.post("/networks", json=new_network(), headers=headers)
    assert_error(created, 403)
    version = {"If-Match": current_version(client, world.net_x)}
    changed = client.patch(
        f"/networks/{world.net_x}", json={"name": "x"}, headers=headers | version
    )
    assert_error(changed, 403)
    assert_error(client.delete(f"/networks/{world.net_x}", headers=headers | version), 403)
    assert network_count(db) == before
    assert len(audit_rows(db, user_name=user, outcome="refused")) == 3


# the audit trail ------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["analyst_a", "officer_a", "planner_x", "coordinator_x"])
def test_only_admin_reads_audit(client: TestClient, world: World, user: str) -> None:
    assert_error(client.get("/audit", headers=world.auth(user)), 403, "forbidden")


def test_admin_reads_audit_and_nobody_changes_it(client: TestClient, db, world: World) -> None:
    assert_error(client.get("/audit"), 401)
    trail = client.get("/audit", headers=world.auth("admin"))
    assert trail.status_code == 200
    entries = trail.json()["entries"]
    # The two networks of the world, and the anonymous read refused just before.
    assert trail.json()["total"] == len(entries) == 3
    assert [e["action"] for e in entries] == ["refused_request", "create", "create"]
    assert entries[0]["client"] == "testclient" and entries[0]["user_id"] is None
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        for path in ("/audit", f"/audit/{entries[0]['id']}"):
            response = client.request(method, path, headers=world.auth("admin"))
            assert response.status_code in (404, 405), (method, path)
            assert_error(response, response.status_code)
        assert_error(client.request(method, "/audit", headers=world.auth("admin")), 405)
    with db.connect() as connection:
        assert connection.execute(select(AuditEntry.__table__)).all() != []


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditEntry.__table__).values(outcome="allowed", user_name="nobody"),
        AuditEntry.__table__.delete(),
    ],
)
def test_audit_log_is_append_only_in_the_database(db, world: World, statement) -> None:
    with pytest.raises(DBAPIError, match="audit trail cannot be changed"), db.begin() as connection:
        connection.execute(statement)
    with pytest.raises(DBAPIError), db.begin() as connection:
        connection.execute(text("UPDATE audit_log SET action = 'erased'"))
    assert len(audit_rows(db, action="create")) == 2


# one error shape ------------------------------------------------------------------------------


def test_error_shape_for_every_status(client: TestClient, settings: Settings, world) -> None:
    admin = world.auth("admin")
    assert_error(client.get("/no/such/route"), 404, "not_found")
    assert_error(client.get("/networks/999999"), 404, "not_found")
    assert_error(client.put("/networks"), 405, "method_not_allowed")
    missing = assert_error(
        client.post("/networks", json={"kind": "BIN", "geometry": square()}, headers=admin),
        422,
    )
    assert "name" in missing["detail"]
    bad_kind = assert_error(
        client.post("/networks", json=new_network(kind="BINX"), headers=admin), 422
    )
    assert "kind" in bad_kind["detail"]
    assert "limit" in assert_error(client.get("/networks?limit=0"), 422)["detail"]
    assert "bbox" in assert_error(client.get("/networks?bbox=1,2"), 422)["detail"]
    assert "network_id" in assert_error(client.get("/networks/abc"), 422)["detail"]
    assert_error(client.get("/audit", headers=bearer("nope")), 401)
    assert_error(client.get("/audit", headers=world.auth("planner_x")), 403)
    stale = client.patch(
        f"/networks/{world.net_x}", json={"name": "x"}, headers=admin | {"If-Match": '"99"'}
    )
    assert_error(stale, 409, "conflict")
    unversioned = client.patch(f"/networks/{world.net_x}", json={"name": "x"}, headers=admin)
    assert_error(unversioned, 428, "precondition_required")


def test_body_over_limit_is_413(db, settings: Settings, world: World) -> None:
    small = settings.model_copy(update={"max_body_bytes": 10_000})
    with TestClient(create_app(small)) as client:
        huge = new_network(name="n" * 20_000)
        response = client.post("/networks", json=huge, headers=world.auth("admin"))
        assert_error(response, 413, "payload_too_large")

        def chunks():
            for _ in range(30):
                yield b" " * 1000

        streamed = client.post(
            "/networks",
            content=chunks(),
            headers=world.auth("admin") | {"Content-Type": "application/json"},
        )
        assert_error(streamed, 413, "payload_too_large")
        assert "10000" in streamed.json()["detail"]
    assert network_count(db) == 2


# personal data never in logs ------------------------------------------------------------------


def test_personal_data_never_logged(client: TestClient, world: World, caplog) -> None:
    phone, email = "+32475123456", "jan.peeters@example.be"
    caplog.set_level(logging.DEBUG)
    admin = world.auth("admin")
    client.get(f"/networks?municipality={phone}&police_zone={email}")
    client.get("/networks", params={"bbox": f"{phone},{email}"})
    client.post(
        "/networks", json=new_network(name=f"{email} {phone}", nis_code=NIS_X), headers=admin
    )
    client.post("/networks", json={"name": email, "phone": phone}, headers=admin)
    client.post("/networks", content=f'{{"name": "{email}", {phone}', headers=admin)
    client.get(f"/audit?user={email}&action={phone}", headers=admin)
    # httpx logs the URL it requests: that is the test's client, not the server.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "bingeo.access" for r in server), "the access log should log requests"
    for record in server:
        message = record.getMessage()
        for secret in (phone, email, "475123456", "jan.peeters"):
            assert secret not in message, (record.name, message)
            assert secret not in repr(record.args)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("area.geojson", b'{"type": "FeatureCollection", "features": [{"type": '),
        ("area.zip", b"PK\x03\x04 not really a zip"),
        ("area.gpkg", b"SQLite format 3\x00" + b"\x00" * 200),
        ("streets.csv", b"\xff\xfe\x00bad"),
    ],
)
def test_upload_errors_name_the_file_not_where_the_server_keeps_it(
    client: TestClient, world: World, name: str, data: bytes
) -> None:
    answer = client.post(
        "/planning/validate",
        files={"file": (name, data, "application/octet-stream")},
        headers=world.auth("planner_x"),
    )
    detail = assert_error(answer, 422)["detail"]
    assert name in detail
    for server_path in (tempfile.gettempdir(), "bingeo-upload-", "upload."):
        assert server_path not in detail, detail


def test_error_details_lose_server_folders() -> None:
    folders = ["/tmp", "/srv/bingeo/data", "/opt/venv"]
    detail = (
        "/tmp/bingeo-upload-x1/upload.gpkg: not readable ('/opt/venv/lib/gdal/x.so' missing); "
        "zip:///srv/bingeo/data/in.zip, see https://example.org/tmp/doc and /networks/3"
    )
    assert without_server_paths(detail, folders) == (
        "upload.gpkg: not readable ('x.so' missing); "
        "zip://in.zip, see https://example.org/tmp/doc and /networks/3"
    )


def test_slow_clients_are_cut_off(db, settings: Settings) -> None:
    """The real server: headers or a body trickling in are answered 408 and the connection is
    closed, while other clients are served."""
    limits = {"BINGEO_HEADER_TIMEOUT_S": "1", "BINGEO_BODY_TIMEOUT_S": "1"}
    with live_server(settings, serve=[], **limits) as base:
        address = ("127.0.0.1", int(base.rsplit(":", 1)[1]))
        starts = {
            "headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            "body": b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{",
            "nothing": b"",
        }
        for what, start in starts.items():
            with socket.create_connection(address, timeout=10) as slow:
                slow.sendall(start)
                answer = b""
                # A byte every 0.2 s: never idle, never done. The server must end it (a client
                # that is never cut off makes this loop end by the socket's own timeout).
                waiting = selectors.DefaultSelector()
                waiting.register(slow, selectors.EVENT_READ)
                for _ in range(50):
                    if waiting.select(timeout=0.2):
                        break
                    if start:  # a connection that sends nothing stays silent
                        slow.sendall(b"a")
                while chunk := slow.recv(1000):  # to the end: the server closes it
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 408"), (what, answer)
                assert b'"request_timeout"' in answer
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_a_flood_of_anonymous_refusals_is_audited_once_a_minute_counted(
    client: TestClient, db, world: World
) -> None:
    members = "401 not_authenticated GET /networks/{network_id}/members"
    no_token = "401 not_authenticated GET /audit"
    bad = bearer("bgo_" + "x" * 43)
    for _ in range(40):
        assert_error(client.get(f"/networks/{world.net_x}/members", headers=bad), 401)
    for _ in range(10):
        assert_error(client.get("/audit"), 401)  # no token at all
    for _ in range(30):  # past the failures allowed, this client is held back
        client.post("/auth/login", json={"name": "nobody", "password": "wrong wrong wrong"})
    with db.connect() as connection:
        per_kind = connection.execute(
            select(RefusalCount.kind, func.count(), func.sum(RefusalCount.count)).group_by(
                RefusalCount.kind
            )
        ).all()
        failed = connection.execute(select(func.count()).select_from(LoginAttempt)).scalar_one()
    assert {kind: total for kind, _, total in per_kind} == {
        members: 40,
        no_token: 10,
        "login held back": 30 - failed,
    }
    assert failed < 10
    # One audit entry per client, kind and minute (the run may straddle a minute).
    rows = audit_rows(db, outcome="refused", client="testclient")
    audited = Counter(r["details"]["kind"] for r in rows if r["details"] and "kind" in r["details"])
    assert audited == {kind: minutes for kind, minutes, _ in per_kind}
    assert sum(audited.values()) <= 6
    held_back = [r for r in rows if r["details"] and r["details"].get("reason") == "rate_limited"]
    assert len(held_back) == audited["login held back"]
    assert all(r["action"] == "login" and r["user_name"] == "nobody" for r in held_back)
    # A minute later the first refusal is audited again, with the count of the minute before.
    with db.connect() as connection:
        last = connection.execute(
            select(RefusalCount.count)
            .where(RefusalCount.kind == no_token)
            .order_by(RefusalCount.minute.desc())
            .limit(1)
        ).scalar_one()
    with db.begin() as connection:
        connection.execute(
            update(RefusalCount).values(minute=RefusalCount.minute - dt.timedelta(minutes=2))
        )
    assert_error(client.get("/audit"), 401)
    again = audit_rows(db, action="refused_request")[-1]
    assert again["details"]["kind"] == no_token
    assert again["details"]["previous_count"] == last


# hostile geometry: the caller first, then a bounded cost ---------------------------------------

MESSAGES = {"nl": "Let op: inbraken in de buurt.", "fr": "Attention : cambriolages."}
# Not a geometry at all: answered 422 by anybody who parses it.
GARBAGE = {"type": "Polygon", "coordinates": "not a ring"}
# 19,999 is the largest star within the vertex limit (its ring is closed by one more); the
# limit refuses 20,001 before anything else.
STAR_SIZES = [21, 101, 1001, 19999, 20001]


def geometry_requests(world: World, geometry: dict) -> list[tuple[str, str, dict]]:
    """Every route that takes a drawn geometry: (method, path, JSON body)."""
    return [
        ("POST", "/alerts/preview", {"target": {"area": geometry}, "messages": MESSAGES}),
        (
            "POST",
            "/alerts",
            {"target": {"area": geometry}, "messages": MESSAGES, "reason": "inbraken"},
        ),
        ("POST", "/planning/validate", geometry),
        ("POST", "/planning/clip", {"geometry": geometry, "against": [world.net_y]}),
        ("POST", "/planning/snap", {"geometry": geometry}),
        ("POST", "/planning/proposals", {"name": "Voorstel", "geometry": geometry}),
        ("POST", "/networks", {"name": "Nieuw", "kind": "BIN", "geometry": geometry}),
        ("PATCH", f"/networks/{world.net_x}", {"version": 1, "geometry": geometry}),
    ]


def upload(geometry: dict) -> dict:
    """A GeoJSON file of ``geometry`` as a multipart upload."""
    feature = {"type": "Feature", "properties": {}, "geometry": geometry}
    data = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    return {"files": {"file": ("area.geojson", data, "application/geo+json")}}


# The user of each route who may do it somewhere, and one whose role never may.
ALLOWED_USER = {
    "/alerts": "officer_a",
    "/planning": "planner_x",
    "/networks": "planner_x",
}
NEVER_USER = {
    "/alerts": "analyst_a",
    "/planning": "coordinator_x",
    "/networks": "officer_a",
}


def _family(path: str) -> str:
    return "/" + path.split("/")[1]


def test_geometry_is_not_parsed_for_an_anonymous_caller(client: TestClient, world, subtests):
    """Anonymous: 401 before the geometry is looked at (garbage would be a 422)."""
    before = network_count(client.app.state.engine)
    for geometry in (GARBAGE, star(21)):
        for method, path, body in geometry_requests(world, geometry):
            with subtests.test(path=path, method=method, geometry=str(geometry)[:40]):
                response = client.request(method, path, json=body)
                assert_error(response, 401, "not_authenticated")
        with subtests.test(path="/planning/validate (upload)"):
            response = client.post("/planning/validate", **upload(geometry))
            assert_error(response, 401, "not_authenticated")
    # Not even the JSON is read: a body that is no JSON at all gets the same 401.
    for method, path, _ in geometry_requests(world, GARBAGE):
        with subtests.test(path=path, method=method, body="not JSON"):
            response = client.request(
                method, path, content=b"{not json", headers={"Content-Type": "application/json"}
            )
            assert_error(response, 401, "not_authenticated")
    assert network_count(client.app.state.engine) == before


def test_geometry_is_not_parsed_for_a_role_that_never_may(client: TestClient, world, subtests):
    """A role that may never do it anywhere: 403 before the geometry is looked at."""
    for method, path, body in geometry_requests(world, GARBAGE):
        with subtests.test(path=path, method=method):
            headers = world.auth(NEVER_USER[_family(path)])
            response = client.request(method, path, json=body, headers=headers)
            assert_error(response, 403, "forbidden")
    with subtests.test(path="/planning/validate (upload)"):
        response = client.post(
            "/planning/validate", headers=world.auth("coordinator_x"), **upload(GARBAGE)
        )
        assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("vertices", STAR_SIZES)
def test_star_polygons_are_refused_with_a_clear_error(
    client: TestClient, world: World, subtests, vertices: int
) -> None:
    """A self-crossing star costs minutes to repair: refused (422 naming the problem) after the
    caller is known, anonymous (401) or logged in with the role for the route."""
    geometry = star(vertices, CENTRE_X)
    problem = "crosses itself more than 50 times" if vertices < 20_000 else "20000 vertices"
    before = network_count(client.app.state.engine)
    for method, path, body in geometry_requests(world, geometry):
        headers = world.auth(ALLOWED_USER[_family(path)])
        with subtests.test(path=path, method=method, user="anonymous"):
            assert_error(client.request(method, path, json=body), 401, "not_authenticated")
        with subtests.test(path=path, method=method, user=headers):
            response = client.request(method, path, json=body, headers=headers)
            error = assert_error(response, 422, "invalid_geometry")
            assert problem in error["detail"], error
    with subtests.test(path="/planning/validate (upload)"):
        response = client.post(
            "/planning/validate", headers=world.auth("planner_x"), **upload(geometry)
        )
        error = assert_error(response, 422, "invalid_geometry")
        assert problem in error["detail"], error
    assert network_count(client.app.state.engine) == before


def test_hostile_geometry_against_a_real_server(db, settings: Settings, world: World) -> None:
    """Stars of every size, anonymous and logged in, sent to a real server while another client
    polls /healthz: each star gets a 4xx in the error shape and every health check an answer."""
    health: list[int] = []
    done = threading.Event()
    with live_server(settings) as base:

        def poll() -> None:
            with httpx.Client(base_url=base, timeout=10) as poller:
                while not done.is_set():
                    health.append(poller.get("/healthz").status_code)
                    done.wait(0.05)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            with httpx.Client(base_url=base, timeout=30) as sender:
                for vertices in STAR_SIZES:
                    geometry = star(vertices)
                    for method, path, body in geometry_requests(world, geometry)[:3]:
                        user = ALLOWED_USER[_family(path)]
                        for headers, status in ((None, 401), (world.auth(user), 422)):
                            response = sender.request(method, path, json=body, headers=headers)
                            assert_error(response, status)
        finally:
            done.set()
            poller.join()
    assert len(health) >= 3 and set(health) == {200}, health
