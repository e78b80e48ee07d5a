"""Shared fixtures and helpers of the API tests: a client, users of every role, two zones.

Loaded as a plugin by tests/conftest.py (``pytest_plugins``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from geoalchemy2.shape import from_shape
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert

from api.app import create_app
from bingeo.access import Actor, Principal
from bingeo.db.models import (
    SRID,
    AreaLevel,
    AuditEntry,
    Network,
    NetworkKind,
    PoliceZoneMunicipality,
    ReferenceArea,
    Role,
)
from bingeo.db.networks import refresh_places
from bingeo.geometry import geojson_to_storage
from bingeo.services import networks as network_service
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

# Two municipalities in two police zones (Bierbeek in zone A, Leuven in zone B).
NIS_X, NIS_Y = "24011", "24062"
ZONE_A, ZONE_B = "5388", "5389"
# Centres (lon, lat) of small squares inside each municipality.
CENTRE_X = (4.76, 50.83)
CENTRE_Y = (4.70, 50.88)
# The two municipalities (lon/lat boxes) and their police zones; they meet at a corner.
PLACES = {
    NIS_X: (ZONE_A, (4.73, 50.80, 4.79, 50.855)),
    NIS_Y: (ZONE_B, (4.67, 50.855, 4.73, 50.91)),
}
PUBLIC_PROPERTIES = {
    "code",
    "name",
    "kind",
    "status",
    "nis_code",
    "police_zone_code",
    "nis_codes",
    "police_zone_codes",
    "crossing",
    "how_to_join",
    "area_m2",
    "version",
    "created_at",
    "updated_at",
    "warnings",
}
ADMIN = Actor(principal=Principal(user_id=None, name="setup", role=Role.admin))


def square(centre: tuple[float, float] = CENTRE_X, half: float = 0.004) -> dict[str, Any]:
    """A GeoJSON Polygon: a lon/lat square of ``2 * half`` degrees around ``centre``."""
    lon, lat = centre
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def star(vertices: int, centre: tuple[float, float] = CENTRE_X, radius: float = 0.01) -> dict:
    """A GeoJSON Polygon: a self-crossing star of ``vertices`` points on a circle, each joined to
    the one about ``vertices / 2`` further on (a single closed ring: the step is coprime)."""
    step = vertices // 2
    while math.gcd(vertices, step) != 1:
        step -= 1
    lon, lat = centre
    points = [
        [
            lon + radius * math.cos(2 * math.pi * i / vertices),
            lat + radius * 0.63 * math.sin(2 * math.pi * i / vertices),
        ]
        for i in range(vertices)
    ]
    ring = [points[(i * step) % vertices] for i in range(vertices)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of ``token``."""
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the one error shape (and status/code); returns the body."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]
    assert "Traceback" not in response.text
    if code is not None:
        assert body["code"] == code, body
    return body


def network_count(engine: Engine) -> int:
    """Number of stored networks."""
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Network)).scalar_one()


def audit_rows(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    """Audit entries (oldest first) whose columns equal ``where``."""
    table = AuditEntry.__table__
    query = select(table).where(*(table.c[k] == v for k, v in where.items()))
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query.order_by(table.c.id))]


@dataclass
class World:
    """Two networks (X/A and Y/B) and a token per user name."""

    net_x: int
    net_y: int
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        """The Authorization header of ``user``."""
        return bearer(self.tokens[user])


USERS: dict[str, dict[str, Any]] = {
    "admin": {"role": Role.admin},
    "analyst_a": {"role": Role.police_analyst, "police_zone_code": ZONE_A},
    "analyst_b": {"role": Role.police_analyst, "police_zone_code": ZONE_B},
    "officer_a": {"role": Role.police_officer, "police_zone_code": ZONE_A},
    "planner_x": {"role": Role.municipality_planner, "nis_code": NIS_X},
    "planner_y": {"role": Role.municipality_planner, "nis_code": NIS_Y},
    "coordinator_x": {"role": Role.coordinator, "network": "x"},
}


def load_places(engine: Engine, places: dict[str, tuple[str, tuple]] = PLACES) -> None:
    """Store municipalities and their police zones (NIS code -> zone code and lon/lat box;
    by default X and Y in zones A and B), unless they are stored already."""
    with engine.begin() as connection:
        for nis, (zone, box) in places.items():
            geometry, _ = geojson_to_storage(json.loads(shapely.to_geojson(shapely.box(*box))))
            for level, code in ((AreaLevel.municipality, nis), (AreaLevel.police_zone, zone)):
                connection.execute(
                    insert(ReferenceArea)
                    .values(
                        level=level,
                        code=code,
                        nis_code=nis,
                        geom=from_shape(geometry, srid=SRID),
                    )
                    .on_conflict_do_nothing()
                )
            connection.execute(
                insert(PoliceZoneMunicipality)
                .values(police_zone_code=zone, nis_code=nis)
                .on_conflict_do_nothing()
            )
        refresh_places(connection)


def make_world(engine: Engine) -> World:
    """Store municipalities X and Y (zones A and B), a network in each, a user of every role,
    and a live token each."""
    load_places(engine)
    nets = {}
    for key, centre in (("x", CENTRE_X), ("y", CENTRE_Y)):
        geometry, _ = geojson_to_storage(square(centre))
        nets[key] = network_service.create_network(
            engine, ADMIN, name=f"BIN {key.upper()}", kind=NetworkKind.BIN, geometry=geometry
        ).id
    world = World(net_x=nets["x"], net_y=nets["y"])
    for name, spec in USERS.items():
        scope = {k: v for k, v in spec.items() if k not in ("role", "network")}
        if "network" in spec:
            scope["network_id"] = nets[spec["network"]]
        world.user_ids[name] = add_user(engine, name, spec["role"], **scope)
        world.tokens[name] = create_token(engine, name, label="test")[1]
    return world


@pytest.fixture
def client(db: Engine, settings: Settings) -> Iterator[TestClient]:
    """A client of the app on the (emptied) test database; server errors become responses."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def world(db: Engine) -> World:
    """Users of every role with tokens, and one network in each of two zones."""
    return make_world(db)
