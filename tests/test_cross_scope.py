"""Requests that reach for another zone's or municipality's data by id: refused and audited.

Users of zone A / municipality X (and the coordinator of network X) ask for network Y's members,
contacts, lifecycle, invitation list and writes, zone B's coverage and alerts. Every such request
gets the one 403 shape, changes nothing, and leaves an audit entry ``refused`` naming the user,
the object and the request id.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pytest
from api_helpers import (
    CENTRE_X,
    CENTRE_Y,
    NIS_X,
    NIS_Y,
    ZONE_A,
    ZONE_B,
    World,
    assert_error,
    audit_rows,
    network_count,
    square,
)
from fastapi.testclient import TestClient
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import Engine, func, insert, select, update

from bingeo.db import areas as area_repo
from bingeo.db.models import (
    SRID,
    Address,
    Alert,
    AlertStatus,
    AreaLevel,
    Member,
    Network,
    NetworkContact,
    NetworkStatus,
)
from bingeo.geometry import geojson_to_storage
from bingeo.matching import lonlat_to_storage
from bingeo.services.matching import rematch_all

# (user, method, path template, body, the object the audit entry names: a key of the ``zone_b``
# ids, or "new" for an object the request would have created).
ATTEMPTS: list[tuple[str, str, str, Any, str]] = [
    ("coordinator_x", "GET", "/networks/{net_y}/members", None, "net_y"),
    (
        "coordinator_x",
        "POST",
        "/networks/{net_y}/members",
        {
            "address_id": 1,
            "name": "Indringer",
            "email": "i@example.be",
            "channels": ["email"],
            "consent_at": "2024-01-01T00:00:00Z",
        },
        "new",
    ),
    ("coordinator_x", "DELETE", "/networks/{net_y}/members/{member_y}", None, "member_y"),
    ("officer_a", "GET", "/networks/{net_y}/members", None, "net_y"),
    ("analyst_a", "GET", "/networks/{net_y}/members", None, "net_y"),
    ("planner_x", "GET", "/networks/{net_y}/contacts", None, "net_y"),
    ("analyst_a", "GET", "/networks/{net_y}/contacts", None, "net_y"),
    (
        "planner_x",
        "POST",
        "/networks/{net_y}/contacts",
        {"role": "coordinator", "name": "Indringer", "email": "i@example.be"},
        "new",
    ),
    (
        "planner_x",
        "PUT",
        "/networks/{net_y}/contacts/{contact_y}",
        {"role": "coordinator", "name": "Indringer"},
        "contact_y",
    ),
    ("planner_x", "DELETE", "/networks/{net_y}/contacts/{contact_y}", None, "contact_y"),
    ("planner_x", "POST", "/networks/{net_y}/lifecycle", {"to": "active"}, "net_y"),
    ("analyst_a", "POST", "/networks/{net_y}/lifecycle", {"to": "active"}, "net_y"),
    ("planner_x", "GET", "/networks/{net_y}/invitations.csv", None, "net_y"),
    ("analyst_a", "GET", "/networks/{net_y}/invitations.csv", None, "net_y"),
    ("planner_x", "PATCH", "/networks/{net_y}", {"name": "Gekaapt"}, "net_y"),
    # (An analyst's PATCH is refused before the network is read, as analysts write no network
    # anywhere: tests/test_api_security.py.)
    ("analyst_a", "DELETE", "/networks/{net_y}", None, "net_y"),
    ("officer_a", "GET", "/alerts/{alert_y}", None, "alert_y"),
    ("officer_a", "GET", "/alerts/{alert_y}/cap.xml", None, "alert_y"),
    ("officer_a", "POST", "/alerts/{alert_y}/cancel", None, "alert_y"),
    ("analyst_a", "GET", "/alerts/{alert_y}", None, "alert_y"),
    ("coordinator_x", "GET", "/alerts/{alert_y}", None, "alert_y"),
]
COVERAGE: list[tuple[str, dict[str, str]]] = [
    ("analyst_a", {"zone": ZONE_B}),
    ("analyst_a", {"municipality": NIS_Y}),
    ("officer_a", {"zone": ZONE_B}),
    ("planner_x", {"municipality": NIS_Y}),
    ("coordinator_x", {"zone": ZONE_B}),
]


@pytest.fixture
def zone_b(client: TestClient, db: Engine, world: World) -> dict[str, int]:
    """Network Y active with a member and a contact, and an alert sent to it by an admin."""
    admin = world.auth("admin")
    with db.begin() as connection:
        connection.execute(
            update(Network).where(Network.id == world.net_y).values(status=NetworkStatus.active)
        )
    contact = client.post(
        f"/networks/{world.net_y}/contacts",
        json={"role": "coordinator", "name": "Coördinator Y", "email": "y@example.be"},
        headers=admin,
    )
    assert contact.status_code == 201, contact.text
    # One address in the middle of network Y, matched, and a member there.
    x, y = lonlat_to_storage(*CENTRE_Y)
    with db.begin() as connection:
        connection.execute(
            insert(Address).values(
                id=1,
                source_key="cross-scope-1",
                street="Straat Y",
                house_number="1",
                nis_code=NIS_Y,
                geom=from_shape(Point(x, y), srid=SRID),
            )
        )
    rematch_all(db)
    member = client.post(
        f"/networks/{world.net_y}/members",
        json={
            "address_id": 1,
            "name": "Lid Y",
            "channels": ["email"],
            "email": "lid@example.be",
            "consent_at": "2024-01-01T00:00:00Z",
        },
        headers=admin,
    )
    assert member.status_code == 201, member.text
    ids = {"net_y": world.net_y, "contact_y": contact.json()["id"], "member_y": member.json()["id"]}
    alert = client.post(
        "/alerts",
        json={
            "target": {"area": square(CENTRE_Y)},
            "messages": {"nl": "Opgelet"},
            "reason": "test of zone B",
        },
        headers=admin,
    )
    assert alert.status_code == 201, alert.text
    ids["alert_y"] = alert.json()["id"]
    return ids


@pytest.fixture
def areas(db: Engine, world: World) -> None:
    """Municipalities X and Y and police zones A and B around the two networks."""
    for level, rows in (
        (AreaLevel.municipality, [(NIS_X, NIS_X, CENTRE_X), (NIS_Y, NIS_Y, CENTRE_Y)]),
        (AreaLevel.police_zone, [(ZONE_A, None, CENTRE_X), (ZONE_B, None, CENTRE_Y)]),
    ):
        frame = gpd.GeoDataFrame(
            {
                "code": [code for code, _, _ in rows],
                "name_nl": [f"{level.value} {code}" for code, _, _ in rows],
                "name_fr": None,
                "nis_code": [nis for _, nis, _ in rows],
                "parent_code": None,
            },
            geometry=[geojson_to_storage(square(c, half=0.02))[0] for _, _, c in rows],
            crs=31370,
        )
        with db.begin() as connection:
            area_repo.upsert_areas(connection, level, frame)
    with db.begin() as connection:
        area_repo.replace_police_zone_members(connection, [(ZONE_A, NIS_X), (ZONE_B, NIS_Y)])


def snapshot(db: Engine) -> tuple[int, ...]:
    """Counts of what a refused request must not change."""
    with db.connect() as connection:
        return (
            network_count(db),
            connection.scalar(select(func.count()).select_from(Member)),
            connection.scalar(select(func.count()).select_from(NetworkContact)),
            connection.scalar(
                select(func.count()).select_from(Alert).where(Alert.status == AlertStatus.cancelled)
            ),
        )


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "audited"),
    ATTEMPTS,
    ids=[f"{a[0]}-{a[1]}-{a[2]}" for a in ATTEMPTS],
)
def test_other_scope_by_id_is_refused_and_audited(
    client: TestClient,
    db: Engine,
    world: World,
    zone_b: dict[str, int],
    user: str,
    method: str,
    path: str,
    body: Any,
    audited: str,
) -> None:
    before = snapshot(db)
    headers = world.auth(user)
    if method in ("PATCH", "DELETE") and path == "/networks/{net_y}":
        version = client.get(f"/networks/{world.net_y}").headers["ETag"]
        headers = headers | {"If-Match": version}
    response = client.request(method, path.format(**zone_b), json=body, headers=headers)
    assert_error(response, 403, "forbidden")
    assert snapshot(db) == before
    object_id = None if audited == "new" else str(zone_b[audited])
    rows = audit_rows(db, request_id=response.headers["X-Request-Id"])
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["outcome"] == "refused"
    assert (row["user_id"], row["user_name"]) == (world.user_ids[user], user)
    assert row["object_id"] == object_id
    # The scope reached for is named: zone B, and network Y where the object belongs to it.
    assert ZONE_B in row["scope"], row
    assert path.startswith("/alerts") or f"network:{world.net_y}" in row["scope"], row


@pytest.mark.parametrize(
    ("user", "params"), COVERAGE, ids=[f"{u}-{'-'.join(p.values())}" for u, p in COVERAGE]
)
def test_coverage_of_another_zone_or_municipality_is_refused_and_audited(
    client: TestClient,
    db: Engine,
    world: World,
    areas: None,
    user: str,
    params: dict[str, str],
) -> None:
    response = client.get("/coverage", params=params, headers=world.auth(user))
    assert_error(response, 403, "forbidden")
    rows = audit_rows(db, request_id=response.headers["X-Request-Id"])
    assert [(r["outcome"], r["user_id"], r["object_type"]) for r in rows] == [
        ("refused", world.user_ids[user], "coverage")
    ]
    assert next(iter(params.values())) in rows[0]["scope"]


def test_own_scope_is_allowed(client: TestClient, world: World, zone_b: dict[str, int]) -> None:
    """The same requests in the users' own scope are answered (the refusals are about scope)."""
    x = world.net_x
    for user, path in (
        ("coordinator_x", f"/networks/{x}/members"),
        ("admin", f"/networks/{x}/contacts"),
        ("planner_x", f"/networks/{x}/invitations.csv"),
        ("analyst_a", f"/networks/{x}/lifecycle"),
    ):
        response = client.get(path, headers=world.auth(user))
        assert response.status_code == 200, (user, path, response.text)
