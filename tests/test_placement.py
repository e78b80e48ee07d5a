"""Approximate positions for addresses the register gives without one (issue 15, points 5-6):
the pure placement, and its use by import, matching, coverage, alert previews and lookups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from api_helpers import ADMIN, bearer
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, box, mapping
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from api.app import create_app
from bingeo.alerts import circle_area
from bingeo.cli import app as cli_app
from bingeo.db.models import Address, AddressNetwork, NetworkKind, NetworkStatus, Role
from bingeo.placement import NO_METHOD, house_number_values, place, street_keys
from bingeo.services import alerts as alert_service
from bingeo.services import coverage as coverage_service
from bingeo.services import networks as network_service
from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

# pure placement --------------------------------------------------------------------------------

NAN = float("nan")


def placed(numbers: list[str | None], xy: list[tuple[float, float] | None], streets=None):
    """Place records of one street (or of ``streets``); (x, y, method names) per record."""
    value, parity = house_number_values(numbers)
    x = np.array([p[0] if p else NAN for p in xy])
    y = np.array([p[1] if p else NAN for p in xy])
    found = place(streets or ["s"] * len(numbers), value, parity, x, y)
    return found.x, found.y, found.methods().tolist()


def test_house_number_values_read_number_suffix_and_side() -> None:
    value, parity = house_number_values(["12", "12A", "12b", "013", "7-9", "A7", "", None, "bus"])
    assert value[:5].tolist() == [12.0, 12 + 1 / 32, 12 + 2 / 32, 13.0, 7.0]
    assert np.isnan(value[5:]).all()
    assert parity.tolist() == [0, 0, 0, 1, 1, -1, -1, -1, -1]


def test_interpolation_between_neighbours_of_the_same_side() -> None:
    # Odd side along y = 0, even side along y = 20; 3 lies between 1 and 7 (a third of the way).
    numbers = ["1", "7", "2", "6", "3", "4"]
    xy = [(0, 0), (60, 0), (0, 20), (40, 20), None, None]
    x, y, methods = placed(numbers, xy)
    assert (x[4], y[4]) == pytest.approx((20.0, 0.0))
    assert (x[5], y[5]) == pytest.approx((20.0, 20.0))  # the even side, not the odd one
    assert methods == [None, None, None, None, "interpolated", "interpolated"]


def test_suffix_places_an_address_just_past_its_number() -> None:
    x, _, methods = placed(["12", "14", "12A", "12C"], [(0, 0), (64, 0), None, None])
    assert x[2] == pytest.approx(1.0) and x[3] == pytest.approx(3.0)
    assert methods[2:] == ["interpolated", "interpolated"]


def test_same_number_located_gives_its_own_position() -> None:
    # Another box of the same house number, and a number beyond the last located one.
    x, y, methods = placed(["5", "5", "9"], [(10, 3), None, None])
    assert (x[1], y[1]) == (10, 3) and methods[1] == "interpolated"
    assert (x[2], y[2]) == (10, 3) and methods[2] == "nearest_number"


def test_one_sided_takes_the_nearest_number_without_extrapolating() -> None:
    x, y, methods = placed(["1", "3", "11", "2"], [(0, 0), (10, 0), None, (0, 20)])
    assert (x[2], y[2]) == (10, 0)
    assert methods[2] == "nearest_number"


def test_side_without_located_numbers_uses_the_other_side() -> None:
    x, y, methods = placed(["1", "5", "4"], [(0, 0), (40, 0), None])
    assert (x[2], y[2]) == pytest.approx((30.0, 0.0))
    assert methods[2] == "interpolated"


def test_street_point_for_numbers_without_digits() -> None:
    # The mean of the located points is (25, 10): the located point nearest it is number 5.
    numbers = ["1", "5", "2", "6", "A7", None]
    xy = [(0, 0), (40, 0), (0, 20), (60, 20), None, None]
    x, y, methods = placed(numbers, xy)
    assert (x[4], y[4]) == (40, 0) and (x[5], y[5]) == (40, 0)
    assert methods[4:] == ["street_centroid", "street_centroid"]


def test_nothing_placed_without_a_located_address_in_the_street() -> None:
    streets = ["a", "a", "b", "b"]
    x, _, methods = placed(["1", "3", "1", "A"], [(0, 0), None, None, None], streets)
    assert methods == [None, "nearest_number", None, None]
    assert np.isnan(x[2:]).all()


def test_streets_are_named_within_postcode_and_municipality() -> None:
    keys = street_keys(
        ["Kerkstraat", "Kerkstraat", "Kerkstraat", "Kerkstraat"],
        ["9000", "9030", "9000", "9000"],
        ["44021", "44021", None, None],
        ["Gent", "Gent", "Gent", "Melle"],
    )
    assert len(set(keys.tolist())) == 4
    # Same name elsewhere: not a neighbour.
    x, _, methods = placed(["1", "3"], [(0, 0), None], streets=list(keys[:2]))
    assert methods == [None, None] and np.isnan(x[1])


def test_inputs_unchanged_and_located_records_untouched() -> None:
    value, parity = house_number_values(["1", "3", "5"])
    x, y = np.array([0.0, NAN, 40.0]), np.array([0.0, NAN, 0.0])
    found = place(["s"] * 3, value, parity, x, y)
    assert np.isnan(x[1]) and found.method.tolist() == [NO_METHOD, 0, NO_METHOD]
    assert np.isnan(found.x[[0, 2]]).all()
    assert found.counts() == {"interpolated": 1, "nearest_number": 0, "street_centroid": 0}


# through the database --------------------------------------------------------------------------

X0, Y0 = 170_000.0, 170_000.0  # Lambert 72, near Bierbeek
HEADER = "id,street,housenumber,postcode,municipality,nis_code,x,y"


def address_file(path: Path, rows: list[tuple]) -> Path:
    lines = [HEADER]
    for source_id, street, number, position in rows:
        x, y = (f"{X0 + position[0]:.3f}", f"{Y0 + position[1]:.3f}") if position else ("", "")
        lines.append(f"{source_id},{street},{number},3360,Bierbeek,24011,{x},{y}")
    path.write_text("\n".join(lines) + "\n")
    return path


# Teststraat: odd side along y = 0, even side along y = 20. Leegstraat has no located address.
ROWS = [
    ("t1", "Teststraat", "1", (0, 0)),
    ("t5", "Teststraat", "5", (40, 0)),
    ("t2", "Teststraat", "2", (0, 20)),
    ("t6", "Teststraat", "6", (60, 20)),
    ("t3", "Teststraat", "3", None),  # interpolated: (20, 0)
    ("t4", "Teststraat", "4", None),  # interpolated: (30, 20)
    ("t9", "Teststraat", "9", None),  # nearest number 5: (40, 0)
    ("t12a", "Teststraat", "12A", None),  # nearest number 6: (60, 20)
    ("ta7", "Teststraat", "A7", None),  # street point: number 5, (40, 0)
    ("l1", "Leegstraat", "1", None),  # not placed
]


def positions(engine: Engine) -> dict[str, tuple]:
    """source id -> (x, y, position_method) relative to (X0, Y0)."""
    table = Address.__table__
    query = select(
        table.c.source_key,
        func.ST_X(table.c.geom),
        func.ST_Y(table.c.geom),
        table.c.position_method,
    )
    with engine.connect() as connection:
        return {
            key.removeprefix("id:"): (
                None if x is None else round(x - X0, 3),
                None if y is None else round(y - Y0, 3),
                method,
            )
            for key, x, y, method in connection.execute(query)
        }


def ids_by_source(engine: Engine) -> dict[str, int]:
    table = Address.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.source_key, table.c.id))
        return {key.removeprefix("id:"): int(i) for key, i in rows}


@pytest.fixture
def placed_world(db: Engine, tmp_path: Path) -> dict:
    """A sector around Teststraat, an active network covering only the spot of number 4 (an
    address without a position in the file), then the addresses imported."""
    sector = box(X0 - 100, Y0 - 100, X0 + 200, Y0 + 200)
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::31370"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"cd_sector": "24011A00-", "name_nl": "Teststraat", "nis": "24011"},
                "geometry": mapping(sector),
            }
        ],
    }
    sectors = tmp_path / "sectors.geojson"
    sectors.write_text(json.dumps(collection))
    import_areas(db, sectors, "sector")
    spot = MultiPolygon([box(X0 + 25, Y0 + 15, X0 + 35, Y0 + 25)])
    network = network_service.create_network(
        db,
        ADMIN,
        name="BIN Teststraat",
        kind=NetworkKind.BIN,
        geometry=spot,
        status=NetworkStatus.active,
    )
    summary = import_addresses(db, address_file(tmp_path / "addresses.csv", ROWS))
    return {"engine": db, "network": network, "summary": summary, "tmp": tmp_path}


def test_import_places_unlocated_addresses(placed_world: dict) -> None:
    engine_positions = positions(placed_world["engine"])
    assert engine_positions["t3"] == (20.0, 0.0, "interpolated")
    assert engine_positions["t4"] == (30.0, 20.0, "interpolated")
    assert engine_positions["t9"] == (40.0, 0.0, "nearest_number")
    assert engine_positions["t12a"] == (60.0, 20.0, "nearest_number")
    assert engine_positions["ta7"] == (40.0, 0.0, "street_centroid")
    assert engine_positions["l1"] == (None, None, None)
    assert engine_positions["t1"] == (0.0, 0.0, None)  # the register's own: no method
    summary = placed_world["summary"]
    assert summary.unlocated == 6
    assert summary.approximate == {"interpolated": 2, "nearest_number": 2, "street_centroid": 1}


def test_approximate_address_matched_counted_and_previewed_apart(
    placed_world: dict, settings: Settings
) -> None:
    engine = placed_world["engine"]
    ids = ids_by_source(engine)
    pairs = AddressNetwork.__table__
    with engine.connect() as connection:
        matched = connection.execute(select(pairs.c.address_id, pairs.c.network_id)).all()
    assert matched == [(ids["t4"], placed_world["network"].id)]

    result = coverage_service.coverage(engine, ADMIN, level="sector")
    totals = result.totals
    assert (totals["addresses"], totals["addresses_approximate"]) == (9, 5)
    assert (totals["covered"], totals["covered_approximate"]) == (1, 1)
    row = result.areas.iloc[0]
    assert (row["addresses_approximate"], row["covered_approximate"]) == (5, 1)

    around_four = circle_area(X0 + 30, Y0 + 20, 10.0)
    request = alert_service.make_request(
        around_four, messages={"nl": "Test.", "fr": "Test.", "de": "Test."}, mode="direct"
    )
    preview = alert_service.preview_alert(engine, ADMIN, request, settings)
    assert preview["addresses"]["inside_area"] == 1
    assert preview["addresses"]["inside_area_approximate"] == 1
    around_one = circle_area(X0, Y0, 10.0)
    request = alert_service.make_request(
        around_one, messages={"nl": "Test.", "fr": "Test.", "de": "Test."}, mode="direct"
    )
    preview = alert_service.preview_alert(engine, ADMIN, request, settings)
    assert preview["addresses"]["inside_area"] == 1
    assert preview["addresses"]["inside_area_approximate"] == 0


def test_reimport_is_idempotent_and_a_located_record_replaces_the_approximation(
    placed_world: dict,
) -> None:
    engine, folder = placed_world["engine"], placed_world["tmp"]
    before = positions(engine)
    again = import_addresses(engine, address_file(folder / "again.csv", ROWS))
    assert (again.stored, again.updated) == (0, 0)
    assert positions(engine) == before

    # The register now knows where number 4 is: outside the network's spot.
    surveyed = [r if r[0] != "t4" else ("t4", "Teststraat", "4", (45, 21)) for r in ROWS]
    summary = import_addresses(engine, address_file(folder / "surveyed.csv", surveyed))
    assert (summary.stored, summary.updated) == (0, 1)
    after = positions(engine)
    assert after["t4"] == (45.0, 21.0, None)
    # Its neighbours are placed again from it: 12A still beyond the last even number (6).
    assert after["t12a"] == (60.0, 20.0, "nearest_number")
    pairs = AddressNetwork.__table__
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(pairs)).scalar_one() == 0
    result = coverage_service.coverage(engine, ADMIN, level="sector")
    assert result.totals["addresses_approximate"] == 4

    repeat = import_addresses(engine, address_file(folder / "surveyed2.csv", surveyed))
    assert (repeat.stored, repeat.updated) == (0, 0)
    assert positions(engine) == after


def test_api_search_answers_id_position_approximate_and_networks(
    placed_world: dict, settings: Settings
) -> None:
    engine = placed_world["engine"]
    ids = ids_by_source(engine)
    network = placed_world["network"]
    add_user(engine, "staff", Role.admin)
    token = create_token(engine, "staff", label="test")[1]
    with TestClient(create_app(settings)) as client:
        response = client.get("/addresses/search", params={"q": "Teststraat 4, 3360 Bierbeek"})
        assert response.status_code == 200, response.text
        best = response.json()["best"]
        assert best["id"] == ids["t4"]
        assert best["approximate"] is True and best["position_method"] == "interpolated"
        lon, lat = best["position"]["coordinates"]
        assert 4.0 < lon < 5.5 and 50.5 < lat < 51.5
        # A resident sees the network by name, kind and status (no id or code, as elsewhere).
        [seen] = best["networks"]
        assert (seen["name"], seen["kind"], seen["status"]) == ("BIN Teststraat", "BIN", "active")
        assert seen["id"] is None and seen["code"] is None

        staff = client.get(
            "/addresses/search",
            params={"q": "Teststraat 1, 3360 Bierbeek"},
            headers=bearer(token),
        ).json()
        assert staff["best"]["id"] == ids["t1"]
        assert staff["best"]["approximate"] is False and staff["best"]["networks"] == []
        four = client.get(
            "/addresses/search",
            params={"q": "Teststraat 4, 3360 Bierbeek"},
            headers=bearer(token),
        ).json()["best"]
        assert [(n["id"], n["code"]) for n in four["networks"]] == [(network.id, network.code)]

        covering = client.get(f"/addresses/{ids['t4']}/networks").json()
        assert covering["located"] is True and covering["approximate"] is True
        assert [n["name"] for n in covering["networks"]] == ["BIN Teststraat"]

        nowhere = client.get("/addresses/search", params={"q": "Leegstraat 1, 3360 Bierbeek"})
        best = nowhere.json()["best"]
        assert best["position"] is None and best["approximate"] is False
        assert best["networks"] == []


def test_cli_address_answers_id_approximate_and_networks(
    placed_world: dict, settings: Settings
) -> None:
    ids = ids_by_source(placed_world["engine"])
    env = {"BINGEO_DATABASE_NAME": settings.database_name}
    result = CliRunner().invoke(
        cli_app, ["address", "Teststraat 4, 3360 Bierbeek", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    best = json.loads(result.output)["best"]
    assert best["id"] == ids["t4"] and best["approximate"] is True
    assert [n["code"] for n in best["networks"]] == [placed_world["network"].code]
    text = CliRunner().invoke(cli_app, ["address", "Teststraat 4, 3360 Bierbeek"], env=env)
    assert f"#{ids['t4']}" in text.output and "approximate: interpolated" in text.output
