"""Where networks lie, derived from their areas, and what a caller sees of other scopes.

Issue 14 (points 2, 3, 6) and issue 15 (points 1, 2): municipalities and police zones of a
network come from its geometry on every path, a network crossing a border is on both sides, a
network that only touches an area is not reached, and a planning report shows nothing of
another scope.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import shapely
from api_helpers import (
    CENTRE_X,
    CENTRE_Y,
    NIS_X,
    NIS_Y,
    World,
    assert_error,
    audit_rows,
    square,
)
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon
from sqlalchemy import Engine, insert, select

from bingeo.access import Actor, Principal
from bingeo.db.models import SRID, Address, AreaLevel, Member, Network, Role
from bingeo.geometry import storage_to_geojson
from bingeo.matching import lonlat_to_storage
from bingeo.services import coverage as coverage_service
from bingeo.services import networks as network_service
from bingeo.services import planning as planning_service
from bingeo.services.demo import REAL_CURRENT_NETWORKS, run_real_demo
from bingeo.services.imports import import_areas, import_networks
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

ADMIN = Actor(principal=Principal(user_id=None, name="setup", role=Role.admin))
GENT = "44021"
GENT_ZONE = "ipz93"


def _write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, driver="GeoJSON")
    return path


def _gent_networks(gent: MultiPolygon, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """A file of networks with only name, kind and status: two overlapping, one touching, one
    crossing Gent's border, one built from a buffered and clipped neighbour."""
    cx, cy = gent.centroid.x, gent.centroid.y
    a = shapely.box(cx - 500, cy - 500, cx + 500, cy + 500)
    shapes = {
        "A": a,
        "B": shapely.box(cx, cy, cx + 1000, cy + 1000),  # overlaps A
        "C": shapely.box(cx - 1500, cy - 500, cx - 500, cy + 500),  # shares A's west edge
        "R": a.buffer(200).difference(a),  # a ring around A, touching it all round
    }
    outline = max(getattr(gent, "geoms", [gent]), key=lambda part: part.area).exterior
    shapes["D"] = outline.interpolate(0.3, normalized=True).buffer(600)  # on Gent's border
    frame = gpd.GeoDataFrame(
        {
            "name": [f"BIN {k}" for k in shapes],
            "kind": ["BIN"] * len(shapes),
            "status": ["active"] * len(shapes),
        },
        geometry=list(shapes.values()),
        crs=SRID,
    )
    return _write(frame, tmp_path / "networks.geojson"), shapes


def _by_name(engine: Engine) -> dict[str, network_service.NetworkRecord]:
    records, _ = network_service.list_networks(
        engine, ADMIN, network_service.NetworkFilter(), limit=100
    )
    return {r.name.removeprefix("BIN "): r for r in records}


def _neighbours(real_data: Path, gent: MultiPolygon, tmp_path: Path) -> tuple[Path, Path]:
    """Gent's neighbouring municipalities and their police zones, cut from the Flemish layers."""
    folder = real_data / "flanders_brussels"
    municipalities = gpd.read_file(folder / "municipalities_2025.gpkg", layer="municipalities")
    near = municipalities[
        municipalities.intersects(gent.buffer(2000)) & (municipalities["nis_code"] != GENT)
    ]
    zones = gpd.read_file(folder / "police_zones.gpkg", layer="police_zones")
    zones = zones[zones["police_zone_code"].isin(set(near["police_zone_code"]))]
    zones = zones[zones["police_zone_code"] != GENT_ZONE]
    return (
        _write(near, tmp_path / "neighbours.geojson"),
        _write(zones, tmp_path / "neighbour_zones.geojson"),
    )


def test_imported_networks_know_their_places_and_crossings_on_both_sides(
    db: Engine, real_data: Path, tmp_path: Path
) -> None:
    context = real_data / "gent" / "gent_context.gpkg"
    import_areas(db, context, AreaLevel.municipality, layer="municipality")
    import_areas(db, context, AreaLevel.police_zone, layer="police_zone")
    gent = gpd.read_file(context, layer="municipality").to_crs(SRID).geometry.iloc[0]
    path, shapes = _gent_networks(gent, tmp_path)
    import_networks(db, path)
    found = _by_name(db)
    # Before the neighbours are loaded, every network lies in Gent only.
    for name, network in found.items():
        assert network.nis_codes == [GENT], name
        assert network.police_zone_codes == [GENT_ZONE], name
        assert (network.nis_code, network.police_zone_code) == (GENT, GENT_ZONE)
    assert not found["D"].crossing

    # Municipalities imported later: the places are derived again.
    near, zones = _neighbours(real_data, gent, tmp_path)
    import_areas(db, near, AreaLevel.municipality)
    import_areas(db, zones, AreaLevel.police_zone)
    found = _by_name(db)
    crossing = found["D"]
    assert crossing.crossing and len(crossing.nis_codes) == 2 and GENT in crossing.nis_codes
    other_nis = next(c for c in crossing.nis_codes if c != GENT)
    other_zone = next(c for c in crossing.police_zone_codes if c != GENT_ZONE)
    # The municipality holding most of the area comes first.
    inside_gent = shapes["D"].intersection(gent).area / shapes["D"].area
    assert crossing.nis_codes[0] == (GENT if inside_gent > 0.5 else other_nis)
    assert all(not n.crossing for k, n in found.items() if k != "D")

    # Filters: the crossing network is on both sides; scoped lists equal the whole restricted.
    def listed(**filters) -> set[str]:
        records, total = network_service.list_networks(
            db, ADMIN, network_service.NetworkFilter(**filters), limit=100
        )
        assert total == len(records)
        return {r.name.removeprefix("BIN ") for r in records}

    assert listed(nis_code=GENT) == listed(police_zone_code=GENT_ZONE) == set(found)
    assert listed(nis_code=other_nis) == listed(police_zone_code=other_zone) == {"D"}

    # Overlaps: A/B overlap; C and R only touch A; scoped answers equal the unscoped ones
    # restricted to the scope (a pair with a network of the scope).
    def pairs(**scope) -> set[frozenset[str]]:
        result = coverage_service.overlaps(db, ADMIN, **scope)
        return {
            frozenset((a.removeprefix("BIN "), b.removeprefix("BIN ")))
            for a, b in zip(result.pairs["name_a"], result.pairs["name_b"], strict=True)
        }

    everything = pairs()
    assert frozenset("AB") in everything
    assert frozenset("AC") not in everything and frozenset("AR") not in everything
    assert pairs(zone=GENT_ZONE) == pairs(municipality=GENT) == everything
    assert pairs(zone=other_zone) == {p for p in everything if "D" in p}
    crossings = coverage_service.overlaps(db, ADMIN, municipality=other_nis).crossings
    assert list(crossings["network"]) == [crossing.id]


def test_a_network_touching_the_area_is_not_reached(
    client: TestClient, db: Engine, world: World
) -> None:
    """A preview over an area equal to one network (through GeoJSON, so with floating-point
    noise) reaches that network only, not the neighbours sharing its boundary."""
    x0, y0 = lonlat_to_storage(4.745, 50.815)  # in X, away from the world's network
    own = shapely.box(x0 - 150, y0 - 150, x0 + 150, y0 + 150)
    west = shapely.box(x0 - 450, y0 - 150, x0 - 150, y0 + 150)  # shares own's west edge
    ring = own.buffer(100).difference(own)  # a buffered and clipped neighbour
    ids = {
        name: network_service.create_network(
            db, ADMIN, name=name, kind="BIN", geometry=MultiPolygon([shape])
        ).id
        for name, shape in (("own", own), ("west", west), ("ring", ring))
    }
    with db.begin() as connection:
        connection.execute(
            insert(Address),
            [
                {
                    "source_key": f"t{i}",
                    "street": "Teststraat",
                    "house_number": str(i),
                    "geom": f"SRID={SRID};POINT({x0 - 100 + 20 * i} {y0})",
                }
                for i in range(10)
            ],
        )
    stored = network_service.get_network(db, ADMIN, ids["own"]).geometry
    area = storage_to_geojson(stored)
    body = {
        "target": {"area": area},
        "messages": {"nl": "Test", "fr": "Essai"},
        "mode": "relay",
        "statuses": ["idea"],
        "reason": "test",
    }
    preview = client.post("/alerts/preview", json=body, headers=world.auth("officer_a"))
    assert preview.status_code == 200, preview.text
    answer = preview.json()
    assert [n["id"] for n in answer["networks"]] == [ids["own"]]
    assert answer["networks"][0]["addresses_inside"] == 10
    assert set(answer["networks_edge_only"]) >= {ids["west"], ids["ring"]}
    # The planning report of the same area lists no overlap with them either.
    report = client.post(
        "/planning/validate", json={"geometry": area}, headers=world.auth("planner_x")
    ).json()
    overlapping = {o["network_id"] for o in report["overlaps"]}
    assert ids["own"] in overlapping and not overlapping & {ids["west"], ids["ring"]}


def _member_at(engine: Engine, network_id: int, lonlat: tuple[float, float], key: str) -> int:
    x, y = lonlat_to_storage(*lonlat)
    with engine.begin() as connection:
        address_id = connection.execute(
            insert(Address)
            .values(
                source_key=key,
                street="Bergstraat",
                house_number=key,
                postcode="3360",
                municipality="Elders",
                geom=f"SRID={SRID};POINT({x} {y})",
            )
            .returning(Address.id)
        ).scalar_one()
        connection.execute(
            insert(Member).values(
                network_id=network_id,
                address_id=address_id,
                name=f"Lid {key}",
                channels=["email"],
                consent_at=dt.datetime.now(dt.UTC),
            )
        )
    return address_id


def test_planning_report_shows_nothing_of_another_scope(
    client: TestClient, db: Engine, world: World
) -> None:
    """Issue 14: a MultiPolygon of a square at home and 7 m around one address elsewhere gave a
    Gent planner that address's label and its network's member count."""
    _member_at(db, world.net_y, CENTRE_Y, "1")
    for key in ("2", "3"):
        _member_at(db, world.net_x, (CENTRE_X[0] + 0.0005 * int(key), CENTRE_X[1]), key)
    x, y = lonlat_to_storage(*CENTRE_Y)
    spy = storage_to_geojson(MultiPolygon([shapely.box(x - 7, y - 7, x + 7, y + 7)]))
    home = square(CENTRE_X, 0.002)
    both = {"type": "MultiPolygon", "coordinates": [home["coordinates"], spy["coordinates"][0]]}
    for user in ("planner_x", "analyst_a"):
        answer = client.post("/planning/validate", json=both, headers=world.auth(user))
        assert answer.status_code == 200, answer.text
        report = answer.json()
        text = json.dumps(report)
        assert str(world.net_y) not in report["members_by_network"]
        assert world.net_y not in {o["network_id"] for o in report["overlaps"]}
        assert "Elders" not in text and "Bergstraat 1," not in text
        assert report["outside_scope_m2"] > 150
        assert "outside_scope" in {f["code"] for f in report["findings"]}
        # At home: two members of X, shown as "< 5" to roles that may not read members.
        assert report["members_by_network"] == {str(world.net_x): "< 5"}
        assert report["members_inside"] == "< 5"
        assert "2 members" not in text
    # The officer of the zone may read members: exact figures, and the read is audited.
    officer = client.post("/planning/validate", json=both, headers=world.auth("officer_a")).json()
    assert officer["members_by_network"] == {str(world.net_x): 2}
    audited = audit_rows(db, object_type="planning_report_members")
    assert [e["user_name"] for e in audited] == ["planner_x", "analyst_a", "officer_a"]
    assert all(e["details"] == {"networks": 1, "members": 2} for e in audited)
    # An admin sees the whole area.
    admin = client.post("/planning/validate", json=both, headers=world.auth("admin")).json()
    assert admin["outside_scope_m2"] == 0 and str(world.net_y) in admin["members_by_network"]


def test_police_texts_of_a_network_are_for_its_coordinator_and_zone_police(
    client: TestClient, db: Engine, world: World
) -> None:
    url = f"/networks/{world.net_x}/alerts"
    for user in ("coordinator_x", "officer_a", "analyst_a", "admin"):
        assert client.get(url, headers=world.auth(user)).status_code == 200, user
    for user in ("planner_x", "planner_y", "analyst_b"):
        assert_error(client.get(url, headers=world.auth(user)), 403)
    assert_error(client.get(url), 401)


def test_places_follow_an_edit_of_the_area(db: Engine, world: World) -> None:
    """An admin moving a network across the border: its places follow the new area."""
    network = network_service.get_network(db, ADMIN, world.net_x)
    x, y = lonlat_to_storage(4.73, 50.855)  # where X and Y meet
    across = MultiPolygon([shapely.box(x - 300, y - 300, x + 300, y + 300)])
    moved = network_service.update_network(
        db, ADMIN, world.net_x, version=network.version, changes={"geometry": across}
    )
    assert sorted(moved.nis_codes) == sorted([NIS_X, NIS_Y]) and moved.crossing
    with db.connect() as connection:
        stored = connection.execute(
            select(Network.nis_codes).where(Network.id == world.net_x)
        ).scalar_one()
    assert sorted(stored) == sorted([NIS_X, NIS_Y])
    proposal = planning_service.Proposal(geometry=across, source="t")
    report = planning_service.validate(db, ADMIN, proposal)
    assert {m["code"] for m in report.municipalities} == {NIS_X, NIS_Y}


def test_bierbeek_police_and_planner_see_and_reach_its_networks(
    client: TestClient, db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Issue 15: networks made from Bierbeek's published street lists belonged to no
    municipality or zone, and the zone's officer was refused a preview over BIN Pimberg."""
    run_real_demo(db, settings.model_copy(update={"tiles": ""}), out_dir=tmp_path)
    users = {
        "bb-analyst": (Role.police_analyst, {"police_zone_code": "ipz48"}),
        "bb-officer": (Role.police_officer, {"police_zone_code": "ipz48"}),
        "bb-planner": (Role.municipality_planner, {"nis_code": "24011"}),
    }
    tokens = {}
    for name, (role, scope) in users.items():
        add_user(db, name, role, **scope)
        tokens[name] = {"Authorization": f"Bearer {create_token(db, name)[1]}"}
    current = {code.upper() for code in REAL_CURRENT_NETWORKS}
    for query in ("police_zone=ipz48", "municipality=24011"):
        listed = client.get(f"/networks?{query}").json()["features"]
        assert {f["properties"]["code"].upper() for f in listed} == current, query
        assert all(f["properties"]["nis_codes"] == ["24011"] for f in listed)
    pimberg = next(f for f in listed if "PIMBERG" in f["properties"]["code"].upper())
    body = {
        "target": {"area": pimberg["geometry"]},
        "messages": {"nl": "Test", "fr": "Essai"},
        "mode": "relay",
        "reason": "test",
    }
    preview = client.post("/alerts/preview", json=body, headers=tokens["bb-officer"])
    assert preview.status_code == 200, preview.text
    reached = [n["id"] for n in preview.json()["networks"]]
    assert reached == [pimberg["id"]]
    assert preview.json()["networks"][0]["addresses_inside"] > 0
    for name in ("bb-analyst", "bb-planner"):
        report = client.post(
            "/planning/validate", json={"geometry": pimberg["geometry"]}, headers=tokens[name]
        )
        assert report.status_code == 200, report.text
        # Along the municipality border only GeoJSON's rounding lies outside: no finding.
        assert report.json()["outside_scope_m2"] < 5
        assert "outside_scope" not in {f["code"] for f in report.json()["findings"]}
        assert report.json()["addresses_inside"] == preview.json()["addresses"]["inside_area"]
