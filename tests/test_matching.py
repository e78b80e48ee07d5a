"""Address-to-network matching on real Gent data, checked against an independent PostGIS join."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from db_helpers import empty_tables
from shapely.geometry import MultiPolygon, Point, box, mapping
from sqlalchemy import Engine, func, literal_column, select

from bingeo.access import Actor, Principal
from bingeo.db.models import (
    Address,
    AddressNetwork,
    AreaLevel,
    Network,
    NetworkKind,
    NetworkStatus,
    ReferenceArea,
    Role,
)
from bingeo.errors import Conflict, InvalidInput, NotFound
from bingeo.matching import AddressPoints, changed_boxes, covers_xy, lonlat_to_storage, match
from bingeo.services import networks as network_service
from bingeo.services.imports import import_addresses, import_areas, import_networks
from bingeo.services.matching import networks_covering, rematch_all

ADMIN = Actor(principal=Principal(user_id=1, name="admin", role=Role.admin))
RESIDENT = Actor()
PAIRS = AddressNetwork.__table__
ADDRESSES = Address.__table__
NETWORKS = Network.__table__


@pytest.fixture(scope="module")
def gent(engine: Engine, real_data: Path) -> Engine:
    """The test database holding Gent's sectors and CRAB addresses (and nothing else)."""
    empty_tables(engine)
    folder = real_data / "gent"
    import_areas(engine, folder / "gent_statistical_sectors.geojson", AreaLevel.sector)
    # Gent and its police zone: networks lie in them, and residents are told whom to contact.
    context = folder / "gent_context.gpkg"
    import_areas(engine, context, AreaLevel.municipality, layer="municipality")
    import_areas(engine, context, AreaLevel.police_zone, layer="police_zone")
    import_addresses(engine, folder / "gent_addresses_crab2014.csv")
    return engine


@pytest.fixture
def empty(gent: Engine) -> Engine:
    """Gent data without networks and their matches."""
    empty_tables(gent, ["networks", "address_networks", "audit_log"])
    return gent


# helpers ---------------------------------------------------------------------------------------


def stored(engine: Engine) -> set[tuple[int, int]]:
    with engine.connect() as connection:
        return {
            (r[0], r[1]) for r in connection.execute(select(PAIRS.c.network_id, PAIRS.c.address_id))
        }


def postgis_join(engine: Engine) -> set[tuple[int, int]]:
    """The independent answer: a plain ST_Covers join in PostGIS."""
    query = select(NETWORKS.c.id, ADDRESSES.c.id).join(
        ADDRESSES, func.ST_Covers(NETWORKS.c.geom, ADDRESSES.c.geom)
    )
    with engine.connect() as connection:
        return {(r[0], r[1]) for r in connection.execute(query)}


def sectors(engine: Engine, codes: list[str]) -> MultiPolygon:
    table = ReferenceArea.__table__
    query = select(func.ST_AsBinary(table.c.geom)).where(
        table.c.level == AreaLevel.sector, table.c.code.in_(codes)
    )
    with engine.connect() as connection:
        parts = [shapely.from_wkb(bytes(r[0])) for r in connection.execute(query)]
    assert len(parts) == len(codes)
    return as_multi(shapely.union_all(parts))


def as_multi(geom) -> MultiPolygon:
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def busiest_sectors(engine: Engine, count: int) -> list[str]:
    """Codes of the sectors holding the most located addresses."""
    table = ReferenceArea.__table__
    query = (
        select(table.c.code)
        .join(ADDRESSES, func.ST_Covers(table.c.geom, ADDRESSES.c.geom))
        .where(table.c.level == AreaLevel.sector)
        .group_by(table.c.code)
        .order_by(func.count().desc(), table.c.code)
        .limit(count)
    )
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(query)]


def some_address(engine: Engine, offset: int) -> tuple[int, float, float]:
    query = (
        select(ADDRESSES.c.id, func.ST_X(ADDRESSES.c.geom), func.ST_Y(ADDRESSES.c.geom))
        .where(ADDRESSES.c.geom.is_not(None))
        .order_by(ADDRESSES.c.id)
        .offset(offset)
        .limit(1)
    )
    with engine.connect() as connection:
        row = connection.execute(query).one()
    return int(row[0]), float(row[1]), float(row[2])


def create(engine: Engine, name: str, geometry: MultiPolygon, **kwargs) -> int:
    record = network_service.create_network(
        engine, ADMIN, name=name, kind=NetworkKind.BIN, geometry=geometry, **kwargs
    )
    return record.id


def edit_area(engine: Engine, network_id: int, area) -> None:
    """Change a network's area through the service, at its current version."""
    current = network_service.get_network(engine, ADMIN, network_id)
    network_service.update_network(
        engine, ADMIN, network_id, version=current.version, changes={"geometry": as_multi(area)}
    )


def make_networks(engine: Engine) -> dict[str, int]:
    """Overlapping unions of sectors, one with an address on its edge and one with a hole."""
    codes = busiest_sectors(engine, 8)
    ids = {
        "union": create(engine, "Union", sectors(engine, codes[0:3])),
        "overlapping": create(engine, "Overlap", sectors(engine, codes[2:6])),
    }
    address_id, x, y = some_address(engine, 5000)
    # The address lies exactly on the west edge of this box.
    ids["edge"] = create(engine, "Edge", MultiPolygon([box(x, y - 250.0, x + 400.0, y + 250.0)]))
    ring = shapely.difference(
        sectors(engine, codes[6:7]).buffer(250.0), sectors(engine, codes[6:7])
    )
    ids["hole"] = create(engine, "Hole", as_multi(ring), status=NetworkStatus.preparation)
    ids["edge_address"] = address_id
    return ids


# pure core -------------------------------------------------------------------------------------


def test_boundary_counts_as_inside_and_holes_do_not() -> None:
    square = box(0.0, 0.0, 10.0, 10.0, ccw=True)
    with_hole = shapely.Polygon(square.exterior, [box(4.0, 4.0, 6.0, 6.0).exterior])
    points = AddressPoints.from_arrays(
        np.array([1, 2, 3, 4, 5, 6]),
        np.array([0.0, 10.0, 5.0, 4.0, 11.0, 3.0]),
        np.array([5.0, 10.0, 5.0, 5.0, 5.0, 3.0]),
    )
    pairs = match(points, [(7, with_hole), (8, square)])
    assert pairs.as_set() == {
        (7, 1),
        (7, 2),
        (7, 4),
        (7, 6),
        (8, 1),
        (8, 2),
        (8, 3),
        (8, 4),
        (8, 6),
    }
    assert covers_xy(square, 0.0, 3.0) and not covers_xy(with_hole, 5.0, 5.0)


def test_changed_boxes_hold_every_point_whose_coverage_changes() -> None:
    rng = np.random.default_rng(7)
    theta = np.linspace(0.0, 2 * np.pi, 64, endpoint=False)
    radius = 500.0 * (1 + 0.2 * np.sin(5 * theta))
    base = shapely.Polygon(np.column_stack([radius * np.cos(theta), radius * np.sin(theta)]))
    edits = {
        "grown": shapely.affinity.scale(base, 1.15, 1.15),
        "shrunk": shapely.affinity.scale(base, 0.8, 0.9),
        "moved": shapely.affinity.translate(base, 120.0, -40.0),
        "holed": base.difference(Point(0, 0).buffer(150.0)),
        "elsewhere": box(2000.0, 2000.0, 2300.0, 2200.0),
        "created": base,
    }
    for label, after in edits.items():
        before = shapely.Polygon() if label == "created" else base
        # Random points plus every vertex of both areas (points exactly on a boundary).
        xy = np.vstack(
            [
                rng.uniform(-800.0, 2400.0, (20_000, 2)),
                shapely.get_coordinates(before),
                shapely.get_coordinates(after),
            ]
        )
        changed = shapely.intersects_xy(before, xy[:, 0], xy[:, 1]) != shapely.intersects_xy(
            after, xy[:, 0], xy[:, 1]
        )
        assert changed.any(), label
        boxes = changed_boxes(before, after)
        in_any = np.zeros(len(xy), dtype=bool)
        for minx, miny, maxx, maxy in boxes:
            in_any |= (
                (xy[:, 0] >= minx) & (xy[:, 0] <= maxx) & (xy[:, 1] >= miny) & (xy[:, 1] <= maxy)
            )
        assert in_any[changed].all(), label
    # A band along the edge, not the whole bounding box.
    grown = edits["grown"]
    area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in changed_boxes(base, grown))
    assert area < 0.5 * box(*grown.bounds).area
    assert changed_boxes(base, base) == []


def test_lonlat_outside_belgium_is_refused() -> None:
    with pytest.raises(InvalidInput):
        lonlat_to_storage(2.35, 48.85)
    with pytest.raises(InvalidInput):
        lonlat_to_storage(200.0, 51.0)


# against PostGIS on real Gent data --------------------------------------------------------------


def test_stored_matches_equal_postgis_join_after_create(empty: Engine) -> None:
    ids = make_networks(empty)
    result = stored(empty)
    assert result == postgis_join(empty)
    by_network = {n: {a for m, a in result if m == n} for n in ids.values()}
    assert all(by_network[ids[k]] for k in ("union", "overlapping", "edge", "hole"))
    assert by_network[ids["union"]] & by_network[ids["overlapping"]], "the two must overlap"
    assert ids["edge_address"] in by_network[ids["edge"]]
    # A full rematch computes the same pairs, so it writes nothing.
    stats = rematch_all(empty)
    assert (stats.added, stats.removed, stats.pairs) == (0, 0, len(result))
    assert stored(empty) == result


def test_full_rematch_from_empty_table_equals_postgis_join(empty: Engine) -> None:
    make_networks(empty)
    expected = postgis_join(empty)
    with empty.begin() as connection:
        connection.execute(PAIRS.delete())
    stats = rematch_all(empty)
    assert stats.added == len(expected) == stats.pairs
    assert stored(empty) == expected


def test_edit_changes_only_that_networks_rows(empty: Engine) -> None:
    ids = make_networks(empty)
    codes = busiest_sectors(empty, 12)

    def row_versions() -> dict[tuple[int, int], str]:
        query = select(PAIRS.c.network_id, PAIRS.c.address_id, literal_column("xmin::text"))
        with empty.connect() as connection:
            return {(r[0], r[1]): r[2] for r in connection.execute(query)}

    before = row_versions()
    edit_area(empty, ids["union"], sectors(empty, codes[1:3] + codes[8:12]))
    after = row_versions()
    others_before = {k: v for k, v in before.items() if k[0] != ids["union"]}
    others_after = {k: v for k, v in after.items() if k[0] != ids["union"]}
    assert others_after == others_before, "rows of other networks must not be rewritten"
    mine_before = {k for k in before if k[0] == ids["union"]}
    mine_after = {k for k in after if k[0] == ids["union"]}
    assert mine_before != mine_after and mine_before & mine_after
    # Rows the edit keeps are not rewritten either.
    assert all(before[k] == after[k] for k in mine_before & mine_after)
    assert set(after) == postgis_join(empty)


def test_edits_of_every_shape_keep_matches_equal_to_postgis(empty: Engine) -> None:
    from bingeo.db import matching as match_repo
    from bingeo.services.matching import rematch_network

    ids = make_networks(empty)
    codes = busiest_sectors(empty, 12)
    base = sectors(empty, codes[0:3])
    x, y = base.centroid.x, base.centroid.y
    edits = [
        shapely.affinity.scale(base, 1.15, 1.15),
        shapely.affinity.scale(base, 0.7, 0.8),
        shapely.affinity.translate(base, 150.0, -60.0),
        shapely.difference(base, Point(x, y).buffer(120.0)),
        sectors(empty, codes[9:12]),
        shapely.union(base, sectors(empty, codes[9:12])),
    ]
    for area in edits:
        edit_area(empty, ids["union"], area)
        assert stored(empty) == postgis_join(empty)

    # A small edit reads the addresses where the areas differ, not all of its bounding box.
    current = network_service.get_network(empty, ADMIN, ids["union"]).geometry
    with empty.begin() as connection:
        in_box = len(match_repo.load_points(connection, boxes=[current.bounds]))
        stats = rematch_network(
            connection, ids["union"], previous=shapely.affinity.scale(current, 0.98, 0.98)
        )
        assert 0 < stats.addresses < in_box / 2
        assert (stats.added, stats.removed) == (0, 0), "the stored matches were already current"
    # A stale version (someone else changed the area in between) matches the whole box again.
    stale = network_service.get_network(empty, ADMIN, ids["edge"])
    network_service.update_network(
        empty, ADMIN, ids["edge"], version=stale.version, changes={"name": "Edge 2"}
    )
    with pytest.raises(Conflict):
        network_service.update_network(
            empty, ADMIN, ids["edge"], version=stale.version, changes={"geometry": base}
        )
    assert stored(empty) == postgis_join(empty)


def test_delete_removes_the_networks_rows(empty: Engine) -> None:
    ids = make_networks(empty)
    network = network_service.get_network(empty, ADMIN, ids["overlapping"])
    network_service.delete_network(empty, ADMIN, ids["overlapping"], version=network.version)
    result = stored(empty)
    assert not {p for p in result if p[0] == ids["overlapping"]}
    assert result == postgis_join(empty) and result


def test_imports_keep_matches_current(empty: Engine, tmp_path: Path) -> None:
    codes = busiest_sectors(empty, 3)
    area = sectors(empty, codes)
    features = [
        {
            "type": "Feature",
            "properties": {"code": "T-1", "name": "Imported", "kind": "BIN", "status": "active"},
            "geometry": mapping(area),
        }
    ]
    path = tmp_path / "networks.geojson"
    collection = {"type": "FeatureCollection", "features": features}
    collection["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::31370"}}
    path.write_text(json.dumps(collection))
    import_networks(empty, path)
    assert stored(empty) == postgis_join(empty) and stored(empty)

    # New addresses inside and outside the imported area are matched by their import.
    inside = area.representative_point()
    outside = Point(area.bounds[0] - 500.0, area.bounds[1] - 500.0)
    csv = tmp_path / "new_addresses.csv"
    csv.write_text(
        "street,housenumber,postcode,municipality,nis_code,x,y\n"
        f"Teststraat,1,9000,Gent,44021,{inside.x:.3f},{inside.y:.3f}\n"
        f"Teststraat,2,9000,Gent,44021,{outside.x:.3f},{outside.y:.3f}\n"
    )
    before = stored(empty)
    import_addresses(empty, csv, crs="31370")
    after = stored(empty)
    assert len(after - before) == 1 and not before - after
    assert after == postgis_join(empty)


def test_covering_a_point_on_the_boundary(empty: Engine) -> None:
    lon, lat = 3.7250, 51.0540
    x, y = lonlat_to_storage(lon, lat)
    edge = create(empty, "Edge", MultiPolygon([box(x, y, x + 300.0, y + 300.0)]))
    closed = create(
        empty, "Closed", MultiPolygon([box(x - 300.0, y - 300.0, x, y)]), status="dissolved"
    )
    elsewhere = create(
        empty, "Elsewhere", MultiPolygon([box(x + 1.0, y + 1.0, x + 50.0, y + 50.0)])
    )

    staff = networks_covering(empty, ADMIN, point=(lon, lat))
    assert [n.id for n in staff.networks] == [edge, closed]
    assert elsewhere not in [n.id for n in staff.networks]

    public = networks_covering(empty, RESIDENT, point=(lon, lat))
    assert [(n.name, n.kind, n.id, n.code) for n in public.networks] == [
        ("Edge", NetworkKind.BIN, None, None)
    ]


def test_covering_an_address_uses_the_stored_matches(empty: Engine) -> None:
    ids = make_networks(empty)
    result = networks_covering(empty, ADMIN, address_id=ids["edge_address"])
    assert ids["edge"] in [n.id for n in result.networks]
    expected = sorted(n for n, a in postgis_join(empty) if a == ids["edge_address"])
    assert [n.id for n in result.networks] == expected
    with pytest.raises(NotFound):
        networks_covering(empty, RESIDENT, address_id=10**12)
    with pytest.raises(InvalidInput):
        networks_covering(empty, RESIDENT)


def test_bulk_rewrite_keeps_keys_and_indexes(empty: Engine, monkeypatch) -> None:
    from sqlalchemy import inspect

    from bingeo.db import matching as match_repo

    make_networks(empty)
    expected = postgis_join(empty)
    with empty.begin() as connection:
        connection.execute(PAIRS.delete())
    monkeypatch.setattr(match_repo, "BULK_REWRITE_MIN", 1)
    rematch_all(empty)
    assert stored(empty) == expected
    with empty.connect() as connection:
        inspector = inspect(connection)
        assert inspector.get_foreign_keys(PAIRS.name) == []  # derived rows, see the model
        assert inspector.get_pk_constraint(PAIRS.name)["constrained_columns"] == [
            "network_id",
            "address_id",
        ]
        assert [i["name"] for i in inspector.get_indexes(PAIRS.name)] == [
            "ix_address_networks_address_id"
        ]


def test_api_and_cli_answer_which_networks_cover(empty: Engine, settings) -> None:
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from api.app import create_app
    from bingeo.cli import app as cli_app

    lon, lat = 3.7250, 51.0540
    x, y = lonlat_to_storage(lon, lat)
    network_id = create(empty, "Edge", MultiPolygon([box(x, y, x + 300.0, y + 300.0)]))
    address_id, ax, ay = some_address(empty, 100)
    around = create(
        empty, "Around", MultiPolygon([box(ax - 10.0, ay - 10.0, ax + 10.0, ay + 10.0)])
    )

    with TestClient(create_app(settings)) as client:
        body = client.get("/points/networks", params={"lon": lon, "lat": lat}).json()
        assert body == {
            "located": True,
            "networks": [
                {
                    "name": "Edge",
                    "kind": "BIN",
                    "status": "idea",
                    "how_to_join": "BIN 'Edge' staat open voor bewoners in zijn gebied. Wilt u "
                    "aansluiten, neem dan contact op met de dienst preventie van de gemeente Gent "
                    "of met de wijkagent van de lokale politie (PZ Gent): zij brengen u in "
                    "contact met de coördinator.",
                }
            ],
        }
        french = client.get(
            f"/addresses/{address_id}/networks", headers={"Accept-Language": "fr-BE"}
        ).json()["networks"]
        assert french[0]["how_to_join"].startswith("Le PLP « Around » est ouvert aux habitants")
        assert "la commune de Gent" in french[0]["how_to_join"]
        body = client.get(f"/addresses/{address_id}/networks").json()
        assert body["address_id"] == address_id and [n["name"] for n in body["networks"]] == [
            "Around"
        ]
        assert client.get("/addresses/999999999/networks").status_code == 404
        assert client.get("/points/networks", params={"lon": 2.35, "lat": 48.85}).status_code == 422

    runner = CliRunner()
    env = {
        "BINGEO_DATABASE_NAME": settings.database_name,
        "BINGEO_DATA_DIR": str(settings.data_dir),
    }
    done = runner.invoke(cli_app, ["covering", "--lon", str(lon), "--lat", str(lat)], env=env)
    assert done.exit_code == 0, done.output
    assert f"{network_id}\t" in done.output and "Edge" in done.output
    done = runner.invoke(cli_app, ["covering", "--address-id", str(address_id), "--json"], env=env)
    assert json.loads(done.output)["networks"][0]["id"] == around
    done = runner.invoke(cli_app, ["match"], env=env)
    assert done.exit_code == 0, done.output
    assert "0 added, 0 removed" in done.output
