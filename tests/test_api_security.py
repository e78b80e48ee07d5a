"""API security: tokens, roles and scopes across zones and municipalities, audit, error shape."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading

import httpx
import pytest
from api_helpers import (
    CENTRE_X,
    CENTRE_Y,
    NIS_X,
    NIS_Y,
    PUBLIC_PROPERTIES,
    ZONE_A,
    ZONE_B,
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
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from bingeo.db.models import ApiToken, AuditEntry, User
from bingeo.services.users import revoke_token
from bingeo.settings import Settings


def new_network(centre=CENTRE_X, **extra) -> dict:
    return {"name": "Nieuw BIN", "kind": "BIN", "geometry": square(centre, 0.002), **extra}


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
    created = client.post(
        "/networks", json=new_network(own_centre, nis_code=own_nis), headers=headers
    )
    assert created.status_code == 201, created.text
    network_id = created.json()["id"]
    changed = client.patch(
        f"/networks/{network_id}",
        json={"name": "Hernoemd"},
        headers=headers | {"If-Match": created.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    before = network_count(db)
    refused = client.post(
        "/networks", json=new_network(other_centre, nis_code=other_nis), headers=headers
    )
    assert_error(refused, 403, "forbidden")
    # without a municipality the network is in nobody's scope
    assert_error(client.post("/networks", json=new_network(own_centre), headers=headers), 403)
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
    moved = client.patch(f"/networks/{world.net_x}", json={"nis_code": NIS_Y}, headers=headers)
    assert_error(moved, 403)
    assert client.get(f"/networks/{world.net_x}").json()["properties"]["nis_code"] == NIS_X
    refused = audit_rows(db, user_name="planner_x", outcome="refused")
    assert len(refused) == 1 and NIS_Y in refused[0]["scope"]
    # nor out of every municipality
    cleared = client.patch(f"/networks/{world.net_x}", json={"nis_code": None}, headers=headers)
    assert_error(cleared, 403)


def test_police_analyst_writes_in_own_zone_only(client: TestClient, db, world: World) -> None:
    for user, own, other in (
        ("analyst_a", world.net_x, world.net_y),
        ("analyst_b", world.net_y, world.net_x),
    ):
        headers = world.auth(user)
        ok = client.patch(
            f"/networks/{own}",
            json={"name": "Eigen zone"},
            headers=headers | {"If-Match": current_version(client, own)},
        )
        assert ok.status_code == 200, ok.text
        refused = client.patch(
            f"/networks/{other}",
            json={"name": "Andere zone"},
            headers=headers | {"If-Match": current_version(client, other)},
        )
        assert_error(refused, 403)
        zone = ZONE_B if user == "analyst_a" else ZONE_A
        assert zone in refused.json()["detail"]
    moved = client.patch(
        f"/networks/{world.net_x}",
        json={"police_zone_code": ZONE_B},
        headers=world.auth("analyst_a") | {"If-Match": current_version(client, world.net_x)},
    )
    assert_error(moved, 403)
    created = client.post(
        "/networks",
        json=new_network(nis_code=NIS_X, police_zone_code=ZONE_A),
        headers=world.auth("analyst_a"),
    )
    assert created.status_code == 201
    assert {r["user_name"] for r in audit_rows(db, outcome="refused")} == {
        "analyst_a",
        "analyst_b",
    }


@pytest.mark.parametrize("user", ["officer_a", "coordinator_x"])
def test_officer_and_coordinator_cannot_write(
    client: TestClient, db, world: World, user: str
) -> None:
    headers = world.auth(user)
    before = network_count(db)
    created = client.post(
        "/networks", json=new_network(nis_code=NIS_X, police_zone_code=ZONE_A), headers=headers
    )
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
    assert trail.json()["total"] == len(entries) == 2  # the two networks of the world
    assert {e["action"] for e in entries} == {"create"}
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
