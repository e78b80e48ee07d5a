"""Importers against real PostGIS with real Belgian data, and bad input that must store nothing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from db_helpers import empty_tables
from geoalchemy2 import Geometry
from shapely.geometry import LineString, Point, box
from sqlalchemy import Engine, func, select

from bingeo.db.models import (
    Address,
    AreaLevel,
    Base,
    Network,
    NetworkVersion,
    PoliceZoneMunicipality,
    ReferenceArea,
)
from bingeo.errors import InvalidInput, UnknownCRS
from bingeo.services.imports import (
    ImportSummary,
    import_addresses,
    import_areas,
    import_networks,
)
from bingeo.services.status import database_status

GENT_NIS = "44021"
CONTEXT_LAYERS = {
    "municipality": AreaLevel.municipality,
    "deelgemeenten": AreaLevel.deelgemeente,
    "wijken": AreaLevel.wijk,
    "police_zone": AreaLevel.police_zone,
}
# A square in Gent's city centre and one in Paris, in lon/lat.
GENT_SQUARE = box(3.720, 51.050, 3.730, 51.055)
PARIS_SQUARE = box(2.340, 48.850, 2.350, 48.855)


# helpers ---------------------------------------------------------------------------------------


def table_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every bingeo table, geometries as EWKT, in primary-key order."""
    rows: dict[str, list[tuple]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [
                func.ST_AsEWKT(c) if isinstance(c.type, Geometry) else c for c in table.columns
            ]
            query = select(*columns).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(r) for r in connection.execute(query)]
    return rows


def snapshot(engine: Engine) -> tuple[dict[str, object], dict[str, list[tuple]]]:
    """What ``bingeo status`` says and every stored row: equal snapshots mean nothing changed."""
    return database_status(engine), table_rows(engine)


def count(engine: Engine, query) -> int:
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def write_geojson(path: Path, features: list[dict], *, epsg: int | None = None) -> Path:
    collection: dict[str, object] = {"type": "FeatureCollection", "features": features}
    if epsg is not None:
        collection["crs"] = {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"},
        }
    path.write_text(json.dumps(collection))
    return path


def feature(geom, **properties: object) -> dict:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": shapely.geometry.mapping(geom),
    }


def lambert(geom):
    """``geom`` from lon/lat to Lambert 72."""
    return gpd.GeoSeries([geom], crs=4326).to_crs(31370).iloc[0]


def codes_in(messages: list[str]) -> set[str]:
    """The codes in brackets of importer messages (``...: feature 12 (44021A87M): ...``)."""
    return {m.group(1) for message in messages if (m := re.search(r"\(([^)]+)\)", message))}


# Gent ------------------------------------------------------------------------------------------


@dataclass
class GentImport:
    """Facts about Gent imported twice, collected once for the whole module."""

    first: dict[str, ImportSummary]
    second: dict[str, ImportSummary]
    status_first: dict[str, object]
    status_second: dict[str, object]
    sector_area_m2: float
    sectors_invalid_stored: int
    located_outside_municipality: int
    same_number_pairs: list[tuple[str, str, str, int]]
    police_zone_members: list[tuple[str, str]]
    wijk_codes: list[str]
    kouter_29: tuple[float, float, str, bool] | None  # x, y, method, inside Gent


@pytest.fixture(scope="module")
def gent(engine: Engine, real_data: Path) -> GentImport:
    """Import every Gent file twice; the facts are read right away, so later tests may truncate."""
    folder = real_data / "gent"
    empty_tables(engine)

    def import_all() -> dict[str, ImportSummary]:
        done = {
            "sectors": import_areas(
                engine, folder / "gent_statistical_sectors.geojson", AreaLevel.sector
            ),
            "addresses": import_addresses(engine, folder / "gent_addresses_crab2014.csv"),
        }
        for layer, level in CONTEXT_LAYERS.items():
            done[layer] = import_areas(engine, folder / "gent_context.gpkg", level, layer=layer)
        return done

    first = import_all()
    status_first = database_status(engine)
    areas = ReferenceArea.__table__
    addresses = Address.__table__
    with engine.connect() as connection:
        sector_area = connection.execute(
            select(func.sum(func.ST_Area(areas.c.geom))).where(areas.c.level == AreaLevel.sector)
        ).scalar_one()
        invalid = connection.execute(
            select(func.count()).where(
                areas.c.level == AreaLevel.sector, ~func.ST_IsValid(areas.c.geom)
            )
        ).scalar_one()
        municipality = (
            select(areas.c.geom)
            .where(areas.c.level == AreaLevel.municipality, areas.c.code == GENT_NIS)
            .scalar_subquery()
        )
        outside = connection.execute(
            select(func.count()).where(
                addresses.c.geom.is_not(None), ~func.ST_Covers(municipality, addresses.c.geom)
            )
        ).scalar_one()
        pairs = connection.execute(
            select(
                addresses.c.street,
                addresses.c.house_number,
                addresses.c.postcode,
                func.count(),
            )
            .group_by(addresses.c.street, addresses.c.house_number, addresses.c.postcode)
            .having(func.count() > 1)
            .order_by(addresses.c.street, addresses.c.house_number)
        ).all()
        members = connection.execute(select(PoliceZoneMunicipality.__table__)).all()
        wijken = connection.scalars(
            select(areas.c.code).where(areas.c.level == AreaLevel.wijk).order_by(areas.c.code)
        ).all()
        kouter = connection.execute(
            select(
                func.ST_X(addresses.c.geom),
                func.ST_Y(addresses.c.geom),
                addresses.c.position_method,
                func.ST_Covers(municipality, addresses.c.geom),
            ).where(
                addresses.c.street == "Kouter",
                addresses.c.house_number == "29",
                addresses.c.postcode == "9000",
            )
        ).first()
    second = import_all()
    return GentImport(
        first=first,
        second=second,
        status_first=status_first,
        status_second=database_status(engine),
        sector_area_m2=float(sector_area),
        sectors_invalid_stored=int(invalid),
        located_outside_municipality=int(outside),
        same_number_pairs=[tuple(p) for p in pairs],
        police_zone_members=[tuple(m) for m in members],
        wijk_codes=list(wijken),
        kouter_29=tuple(kouter) if kouter is not None else None,
    )


def test_gent_sectors_stored_and_invalid_ones_repaired(gent: GentImport, real_data: Path) -> None:
    source = gpd.read_file(real_data / "gent" / "gent_statistical_sectors.geojson")
    invalid_codes = set(source.loc[~source.is_valid, "nis9_code"])
    summary = gent.first["sectors"]
    assert summary.read == 254
    assert summary.stored == 254
    assert summary.rejected == []
    assert len(invalid_codes) == 4
    assert len(summary.repaired) == 4
    assert codes_in(summary.repaired) == invalid_codes
    assert gent.status_first["reference_areas"]["sector"] == 254
    assert gent.sectors_invalid_stored == 0


def test_gent_sector_area_equals_the_source_area(gent: GentImport, real_data: Path) -> None:
    source = gpd.read_file(real_data / "gent" / "gent_statistical_sectors.geojson")
    expected_m2 = source.to_crs(31370).make_valid().area.sum()
    assert expected_m2 == pytest.approx(157.8e6, rel=0.001)
    assert gent.sector_area_m2 == pytest.approx(expected_m2, rel=0.001)


def test_gent_addresses_stored_located_and_unlocated(gent: GentImport) -> None:
    summary = gent.first["addresses"]
    assert summary.read == 136_152
    assert summary.stored == 136_152
    assert summary.unlocated == 36_874
    assert summary.rejected == []
    # Every record without a position lies in a street with located ones: all are placed.
    assert gent.status_first["addresses"] == {
        "located": 99_278,
        "approximate": 36_874,
        "unlocated": 0,
    }
    assert sum(summary.approximate.values()) == 36_874
    # Measured: 31,295 interpolated, 5,531 at the nearest number, 48 at the street's point.
    assert summary.approximate["interpolated"] > 30_000
    assert summary.approximate["street_centroid"] < 100


def test_gent_kouter_29_has_an_approximate_position_in_gent(gent: GentImport) -> None:
    # The register gives "Kouter 29, 9000 Gent" no position; its street has located numbers.
    assert gent.kouter_29 is not None
    x, y, method, inside = gent.kouter_29
    assert method in ("interpolated", "nearest_number")
    assert inside


def test_gent_located_addresses_inside_the_municipality_but_one(gent: GentImport) -> None:
    assert gent.located_outside_municipality == 1


def test_gent_records_with_the_same_street_and_number_are_all_kept(gent: GentImport) -> None:
    # 26 pairs of records share street, number and postcode; 2 of them are identical records.
    assert len(gent.same_number_pairs) == 26
    assert all(n == 2 for *_, n in gent.same_number_pairs)
    assert ("Burgstraat", "C131", "9000", 2) in gent.same_number_pairs
    assert ("Bijlokevest", "139", "9000", 2) in gent.same_number_pairs


def test_gent_context_layers(gent: GentImport) -> None:
    assert gent.status_first["reference_areas"] == {
        "sector": 254,
        "wijk": 25,
        "deelgemeente": 14,
        "municipality": 1,
        "police_zone": 1,
    }
    assert gent.wijk_codes == [f"44021W{n:02d}" for n in range(1, 26)]
    assert gent.police_zone_members == [("ipz93", GENT_NIS)]


def test_gent_second_import_changes_nothing(gent: GentImport) -> None:
    assert gent.status_second == gent.status_first
    for name, first in gent.first.items():
        second = gent.second[name]
        assert (second.stored, second.updated) == (0, 0), name
        assert second.unchanged == first.stored, name


# Flanders and Brussels -------------------------------------------------------------------------


def test_flanders_police_zones_with_members(db: Engine, real_data: Path) -> None:
    path = real_data / "flanders_brussels" / "police_zones.gpkg"
    summary = import_areas(db, path, AreaLevel.police_zone)
    assert (summary.read, summary.stored, summary.rejected) == (107, 107, [])
    source = gpd.read_file(path)
    expected = {
        (row.police_zone_code, nis.strip())
        for row in source.itertuples()
        for nis in row.member_nis_codes.split(",")
    }
    members = PoliceZoneMunicipality.__table__
    with db.connect() as connection:
        stored = set(connection.execute(select(members)).all())
    assert stored == expected
    assert len({zone for zone, _ in stored}) == 107
    # Every Flemish and Brussels municipality (2025) belongs to exactly one zone.
    assert len(stored) == len({nis for _, nis in stored}) == 304


def test_flanders_municipalities(db: Engine, real_data: Path) -> None:
    path = real_data / "flanders_brussels" / "municipalities_2025.gpkg"
    summary = import_areas(db, path, AreaLevel.municipality)
    assert (summary.stored, summary.repaired, summary.rejected) == (304, [], [])
    areas = ReferenceArea.__table__
    assert database_status(db)["reference_areas"] == {"municipality": 304}
    assert count(db, select(func.count()).where(areas.c.nis_code == areas.c.code)) == 304
    assert count(db, select(func.count()).where(areas.c.name_nl == "Gent")) == 1


# networks --------------------------------------------------------------------------------------


def network_rows(engine: Engine) -> dict[str, tuple]:
    table = Network.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.code, table.c.kind, table.c.status, table.c.version, table.c.geom)
        )
        return {r.code: (r.kind.value, r.status.value, r.version) for r in rows}


def test_networks_import_upserts_with_versions(db: Engine, tmp_path: Path) -> None:
    east = shapely.affinity.translate(GENT_SQUARE, xoff=0.02)
    lonlat = write_geojson(
        tmp_path / "networks.geojson",
        [
            feature(GENT_SQUARE, code="BIN-1", name="BIN Kouter", kind="BIN", status="charter"),
            feature(east, code="BINZ-1", name="BIN-Z Centrum", kind="BINZ"),
        ],
    )
    south = lambert(shapely.affinity.translate(GENT_SQUARE, yoff=-0.02))
    in_lambert = write_geojson(
        tmp_path / "lambert.geojson",
        [feature(south, code="BIN-2", name="BIN Zuid", kind="bin", status="Information evening")],
        epsg=31370,
    )
    gpkg = tmp_path / "networks.gpkg"
    gpd.GeoDataFrame(
        {"code": ["BIN-3"], "name": ["BIN Noord"], "kind": ["BIN-Z"], "status": ["idea"]},
        geometry=[lambert(shapely.affinity.translate(GENT_SQUARE, yoff=0.02))],
        crs=31370,
    ).to_file(gpkg, layer="networks")

    assert import_networks(db, lonlat).stored == 2
    assert import_networks(db, in_lambert).stored == 1
    assert import_networks(db, gpkg).stored == 1
    assert network_rows(db) == {
        "BIN-1": ("BIN", "charter", 1),
        "BINZ-1": ("BIN-Z", "active", 1),
        "BIN-2": ("BIN", "information_evening", 1),
        "BIN-3": ("BIN-Z", "idea", 1),
    }
    table = Network.__table__
    # The Lambert file is stored where it was drawn, not reinterpreted as lon/lat.
    with db.connect() as connection:
        distance = connection.execute(
            select(
                func.ST_HausdorffDistance(table.c.geom, func.ST_GeomFromText(south.wkt, 31370))
            ).where(table.c.code == "BIN-2")
        ).scalar_one()
    assert distance < 0.01

    again = import_networks(db, lonlat)
    assert (again.stored, again.updated, again.unchanged) == (0, 0, 2)
    assert network_rows(db)["BIN-1"] == ("BIN", "charter", 1)

    moved = write_geojson(
        tmp_path / "networks.geojson",
        [
            feature(
                GENT_SQUARE.buffer(0.001),
                code="BIN-1",
                name="BIN Kouter",
                kind="BIN",
                status="charter",
            ),
            feature(east, code="BINZ-1", name="BIN-Z Centrum", kind="BINZ"),
        ],
    )
    changed = import_networks(db, moved)
    assert (changed.stored, changed.updated, changed.unchanged) == (0, 1, 1)
    rows = network_rows(db)
    assert rows["BIN-1"] == ("BIN", "charter", 2)
    assert rows["BINZ-1"] == ("BIN-Z", "active", 1)
    # The area the import replaced is kept in the network's history, as for an edit.
    versions = NetworkVersion.__table__
    with db.connect() as connection:
        kept = connection.execute(
            select(
                versions.c.version,
                versions.c.changed_by,
                versions.c.reason,
                func.ST_Area(versions.c.geom),
            )
            .join(table, table.c.id == versions.c.network_id)
            .where(table.c.code == "BIN-1")
        ).all()
    assert len(kept) == 1
    version, changed_by, reason, area = kept[0]
    assert (version, changed_by, reason) == (1, "import", "import of networks.geojson")
    assert area == pytest.approx(lambert(GENT_SQUARE).area, rel=1e-6)


# bad input -------------------------------------------------------------------------------------


@pytest.fixture
def seeded(db: Engine, real_data: Path, tmp_path: Path) -> Engine:
    """A database holding a municipality, a network and a few addresses, to see nothing changes."""
    import_areas(db, real_data / "gent" / "gent_context.gpkg", "municipality", layer="municipality")
    import_networks(
        db,
        write_geojson(
            tmp_path / "seed.geojson", [feature(GENT_SQUARE, code="S-1", name="Seed", kind="BIN")]
        ),
    )
    csv = tmp_path / "seed.csv"
    csv.write_text(
        "street,housenumber,postcode,lat,lon\nKouter,1,9000,51.0500,3.7250\nKouter,2,9000,,\n"
    )
    import_addresses(db, csv)
    return db


def assert_rejected_unchanged(engine: Engine, run, path: Path, *needles: str) -> InvalidInput:
    """``run()`` raises InvalidInput naming ``path`` and each needle, and changes nothing."""
    before = snapshot(engine)
    with pytest.raises(InvalidInput) as caught:
        run()
    assert str(path) in caught.value.detail
    for needle in needles:
        assert needle in caught.value.detail
    assert snapshot(engine) == before
    return caught.value


def test_seeded_snapshot_is_not_empty(seeded: Engine) -> None:
    _, rows = snapshot(seeded)
    counts = {name: len(r) for name, r in rows.items()}
    assert counts["reference_areas"] == counts["networks"] == counts["streets"] == 1
    assert counts["addresses"] == 2


def test_text_file_named_geojson(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "sectors.geojson"
    path.write_text("these are not the sectors you are looking for\n")
    assert_rejected_unchanged(
        seeded, lambda: import_areas(seeded, path, "sector"), path, "not a readable geodata"
    )


@pytest.mark.parametrize("name", ["empty.geojson", "empty.gpkg", "empty.csv"])
def test_empty_file(seeded: Engine, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    if name.endswith(".csv"):
        run = lambda: import_addresses(seeded, path)  # noqa: E731
    else:
        run = lambda: import_areas(seeded, path, "sector")  # noqa: E731
    assert_rejected_unchanged(seeded, run, path, "empty")


def test_geojson_without_features(seeded: Engine, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "none.geojson", [])
    assert_rejected_unchanged(seeded, lambda: import_networks(seeded, path), path, "no features")


def test_csv_missing_street_column(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text("straat_naam,housenumber,lat,lon\nKouter,3,51.05,3.72\n")
    assert_rejected_unchanged(seeded, lambda: import_addresses(seeded, path), path, "'street'")


def test_csv_malformed_coordinate(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text(
        "street,housenumber,lat,lon\nKouter,3,51.05,3.72\nKouter,4,51.05,3.72x\nKouter,5,,\n"
    )
    assert_rejected_unchanged(
        seeded, lambda: import_addresses(seeded, path), path, "row 3", "not numbers"
    )


def test_csv_row_in_paris(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text("street,housenumber,lat,lon\nKouter,3,51.05,3.72\nRue de Rivoli,1,48.86,2.34\n")
    assert_rejected_unchanged(
        seeded, lambda: import_addresses(seeded, path), path, "row 3", "outside Belgium"
    )


def test_csv_lat_lon_swapped(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text("street,housenumber,lat,lon\nKouter,3,51.05,3.72\nKouter,4,3.72,51.05\n")
    assert_rejected_unchanged(
        seeded, lambda: import_addresses(seeded, path), path, "row 3", "outside Belgium"
    )


def test_csv_with_every_row_rejected(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text("street,housenumber,lat,lon\nKouter,3,3.72,51.05\n")
    assert_rejected_unchanged(
        seeded, lambda: import_addresses(seeded, path), path, "row 2", "outside Belgium"
    )


@pytest.mark.parametrize(
    ("geom", "kind"),
    [(Point(3.72, 51.05), "Point"), (LineString([(3.72, 51.05), (3.73, 51.06)]), "LineString")],
)
def test_points_or_lines_where_polygons_are_expected(
    seeded: Engine, tmp_path: Path, geom, kind: str
) -> None:
    path = write_geojson(
        tmp_path / "sectors.geojson",
        [feature(GENT_SQUARE, cd_sector="44021A00-"), feature(geom, cd_sector="44021A01-")],
    )
    assert_rejected_unchanged(
        seeded,
        lambda: import_areas(seeded, path, "sector"),
        path,
        "feature 2 (44021A01-)",
        f"{kind} is not polygonal",
    )


def test_polygon_in_paris(seeded: Engine, tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "networks.geojson",
        [
            feature(GENT_SQUARE, name="BIN Gent", kind="BIN"),
            feature(PARIS_SQUARE, name="BIN Paris", kind="BIN"),
        ],
    )
    assert_rejected_unchanged(
        seeded,
        lambda: import_networks(seeded, path),
        path,
        "feature 2 (BIN Paris)",
        "outside Belgium",
    )


def test_lambert_coordinates_without_crs_member(seeded: Engine, tmp_path: Path) -> None:
    # GeoJSON without "crs" is lon/lat (RFC 7946): Lambert metres there are far off the globe.
    path = write_geojson(
        tmp_path / "networks.geojson", [feature(lambert(GENT_SQUARE), name="BIN", kind="BIN")]
    )
    assert_rejected_unchanged(
        seeded, lambda: import_networks(seeded, path), path, "feature 1 (BIN)", "not finite"
    )


def test_geojson_with_heights_is_stored_flat(db: Engine, tmp_path: Path) -> None:
    # RFC 7946 allows [lon, lat, height]; GDAL then reports EPSG:4979 (WGS84 3D).
    ring = [[x, y, 12.5] for x, y in GENT_SQUARE.exterior.coords]
    path = write_geojson(
        tmp_path / "networks.geojson",
        [
            {
                "type": "Feature",
                "properties": {"code": "Z-1", "name": "BIN 3D", "kind": "BIN"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    )
    assert import_networks(db, path).stored == 1
    table = Network.__table__
    assert count(db, select(func.ST_NDims(table.c.geom))) == 2


@pytest.mark.parametrize("epsg", [32631, 3857])
def test_unknown_crs_geojson(seeded: Engine, tmp_path: Path, epsg: int) -> None:
    geom = gpd.GeoSeries([GENT_SQUARE], crs=4326).to_crs(epsg).iloc[0]
    path = write_geojson(
        tmp_path / "sectors.geojson", [feature(geom, cd_sector="44021A00-")], epsg=epsg
    )
    error = assert_rejected_unchanged(
        seeded, lambda: import_areas(seeded, path, "sector"), path, f"EPSG:{epsg}"
    )
    assert isinstance(error, UnknownCRS)


def test_unknown_crs_geopackage(seeded: Engine, tmp_path: Path) -> None:
    path = tmp_path / "networks.gpkg"
    gpd.GeoDataFrame({"name": ["BIN"], "kind": ["BIN"]}, geometry=[GENT_SQUARE], crs=4326).to_crs(
        3857
    ).to_file(path, layer="networks")
    error = assert_rejected_unchanged(
        seeded, lambda: import_networks(seeded, path), path, "EPSG:3857"
    )
    assert isinstance(error, UnknownCRS)


def test_geopackage_with_several_layers_and_none_chosen(seeded: Engine, real_data: Path) -> None:
    path = real_data / "gent" / "gent_context.gpkg"
    assert_rejected_unchanged(
        seeded, lambda: import_areas(seeded, path, "wijk"), path, "several layers", "'wijken'"
    )


def test_missing_layer(seeded: Engine, real_data: Path) -> None:
    path = real_data / "gent" / "gent_context.gpkg"
    assert_rejected_unchanged(
        seeded,
        lambda: import_areas(seeded, path, "wijk", layer="sectors"),
        path,
        "no layer 'sectors'",
    )


def test_area_file_without_code_column(seeded: Engine, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "wijken.geojson", [feature(GENT_SQUARE, naam="Kouter")])
    assert_rejected_unchanged(
        seeded, lambda: import_areas(seeded, path, "wijk"), path, "no code column"
    )


def test_network_with_unknown_kind(seeded: Engine, tmp_path: Path) -> None:
    path = write_geojson(
        tmp_path / "networks.geojson", [feature(GENT_SQUARE, name="BIN X", kind="WhatsApp")]
    )
    assert_rejected_unchanged(
        seeded, lambda: import_networks(seeded, path), path, "feature 1 (BIN X)", "'WhatsApp'"
    )


def test_repeated_code_names_the_feature(seeded: Engine, tmp_path: Path) -> None:
    east = shapely.affinity.translate(GENT_SQUARE, xoff=0.02)
    path = write_geojson(
        tmp_path / "networks.geojson",
        [
            feature(PARIS_SQUARE, code="N-1", name="Paris", kind="BIN"),
            feature(GENT_SQUARE, code="N-1", name="One", kind="BIN"),
            feature(east, code="N-1", name="Two", kind="BIN"),
        ],
    )
    assert_rejected_unchanged(
        seeded, lambda: import_networks(seeded, path), path, "feature 3", "N-1 repeated"
    )


def test_repeated_area_code_names_the_feature(seeded: Engine, tmp_path: Path) -> None:
    east = shapely.affinity.translate(GENT_SQUARE, xoff=0.02)
    path = write_geojson(
        tmp_path / "wijken.geojson",
        [
            feature(Point(3.72, 51.05), wijk_code="W1"),
            feature(GENT_SQUARE, wijk_code="W1"),
            feature(east, wijk_code="W1"),
        ],
    )
    error = assert_rejected_unchanged(
        seeded, lambda: import_areas(seeded, path, "wijk"), path, "feature 3: code W1 repeated"
    )
    assert "feature 1 (W1): Point is not polygonal" in error.detail


def test_skip_invalid_with_nothing_valid_stores_nothing(seeded: Engine, tmp_path: Path) -> None:
    path = write_geojson(tmp_path / "wijken.geojson", [feature(PARIS_SQUARE, wijk_code="W1")])
    before = snapshot(seeded)
    summary = import_areas(seeded, path, "wijk", skip_invalid=True)
    assert (summary.read, summary.stored, len(summary.rejected)) == (1, 0, 1)
    assert snapshot(seeded) == before


def test_skip_invalid_stores_the_valid_rows(seeded: Engine, tmp_path: Path) -> None:
    networks = write_geojson(
        tmp_path / "networks.geojson",
        [
            feature(PARIS_SQUARE, code="P", name="BIN Paris", kind="BIN"),
            feature(GENT_SQUARE, code="G", name="BIN Gent", kind="BIN-Z"),
            feature(Point(3.72, 51.05), code="X", name="BIN Punt", kind="BIN"),
        ],
    )
    summary = import_networks(seeded, networks, skip_invalid=True)
    assert (summary.read, summary.stored, len(summary.rejected)) == (3, 1, 2)
    assert "feature 1 (BIN Paris)" in summary.rejected[0]
    assert "feature 3 (BIN Punt)" in summary.rejected[1]
    assert network_rows(seeded)["G"] == ("BIN-Z", "active", 1)

    addresses = tmp_path / "addresses.csv"
    addresses.write_text(
        "street,housenumber,lat,lon\n"
        "Kouter,10,51.05,3.72\n"
        "Kouter,11,51.05,oops\n"
        ",12,51.05,3.72\n"
        "Kouter,13,,\n"
        "Rue de Rivoli,1,48.86,2.34\n"
    )
    summary = import_addresses(seeded, addresses, skip_invalid=True)
    assert (summary.read, summary.stored, summary.unlocated) == (5, 2, 1)
    assert sorted(re.search(r"row (\d+)", r).group(1) for r in summary.rejected) == ["3", "4", "6"]
    # The two without a position (Kouter 2 of the seed, Kouter 13) get one from their street.
    assert database_status(seeded)["addresses"] == {
        "located": 2,
        "approximate": 2,
        "unlocated": 0,
    }
