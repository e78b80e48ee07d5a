"""Hardened geometry input: every bad geometry gets a 4xx naming the problem; nothing is stored."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from api_helpers import CENTRE_X, World, assert_error, network_count, square
from fastapi.testclient import TestClient
from pyproj import Transformer

from api.app import create_app
from bingeo.errors import InvalidGeometry, InvalidInput
from bingeo.geometry import GeometryLimits, belgian_transformer, geojson_to_storage
from bingeo.settings import Settings

LON, LAT = CENTRE_X


def ring(*points: tuple[float, float]) -> list[list[float]]:
    return [list(p) for p in points]


def polygon(*rings: list) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def body(geometry: object) -> dict:
    return {"name": "Test", "kind": "BIN", "geometry": geometry}


def circle(n: int, radius: float = 0.004) -> dict:
    import math

    points = [
        [LON + radius * math.cos(2 * math.pi * i / n), LAT + radius * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return polygon([*points, points[0]])


SQUARE = square()
BAD_GEOMETRIES = {
    "point": ({"type": "Point", "coordinates": [LON, LAT]}, "Point"),
    "linestring": (
        {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.01, LAT]]},
        "LineString",
    ),
    "feature_collection": (
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": SQUARE}]},
        "FeatureCollection",
    ),
    "no_type": ({"coordinates": SQUARE["coordinates"]}, "expected a GeoJSON Polygon"),
    "string_coordinates": (
        polygon([["4.75", "50.82"], ["4.77", "50.82"], ["4.77", "50.84"], ["4.75", "50.82"]]),
        "[longitude, latitude] numbers",
    ),
    "boolean_coordinates": (
        polygon([[True, False], [4.77, 50.82], [4.77, 50.84], [True, False]]),
        "[longitude, latitude] numbers",
    ),
    "null_coordinates": (polygon([[None, None], [4.77, 50.82], [4.77, 50.84]]), "numbers"),
    "nested_too_deep": ({"type": "Polygon", "coordinates": [[[[LON, LAT]]]]}, "numbers"),
    "coordinates_not_array": ({"type": "Polygon", "coordinates": "4.7 50.8"}, "array"),
    "empty_coordinates": ({"type": "Polygon", "coordinates": []}, "empty"),
    "empty_multipolygon": ({"type": "MultiPolygon", "coordinates": []}, "empty"),
    "empty_ring": ({"type": "Polygon", "coordinates": [[]]}, "at least 4 positions"),
    "two_points": (polygon([[LON, LAT], [LON + 0.01, LAT]]), "at least 4 positions"),
    "degenerate_line": (
        polygon(ring((LON, LAT), (LON + 0.01, LAT), (LON + 0.02, LAT), (LON, LAT))),
        "no polygonal area",
    ),
    "paris": (square((2.35, 48.86)), "outside Belgium"),
    "lambert_not_lonlat": (
        polygon(ring((150000, 170000), (151000, 170000), (151000, 171000), (150000, 170000))),
        "longitude/latitude",
    ),
    "too_large": (square(CENTRE_X, 0.2), "exceeds the limit"),
    "too_many_vertices": (circle(1200), "more than 1000 vertices"),
}


@pytest.fixture
def small_client(db, settings: Settings):
    """A client whose geometry limits are small enough to reach in a test."""
    limited = settings.model_copy(update={"max_vertices": 1000, "max_area_m2": 50e6})
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        yield client


def test_bad_geometry_is_refused(small_client: TestClient, db, world: World, subtests) -> None:
    for case, (geometry, expected) in BAD_GEOMETRIES.items():
        with subtests.test(case=case):
            response = small_client.post(
                "/networks", json=body(geometry), headers=world.auth("admin")
            )
            error = assert_error(response, 422)
            assert expected in error["detail"], error
            assert "geometry" in error["detail"]
    assert network_count(db) == 2


INVALID_JSON = [
    ('{"name": "x", "kind": "BIN", "geometry": ', "JSON"),
    ("not json at all", "JSON"),
    ("", "required"),
    ("[1, 2, 3]", "object"),
]


def test_invalid_json_body(client: TestClient, db, world: World, subtests) -> None:
    for text, expected in INVALID_JSON:
        with subtests.test(text=text):
            response = client.post(
                "/networks",
                content=text,
                headers=world.auth("admin") | {"Content-Type": "application/json"},
            )
            error = assert_error(response, 422)
            assert expected.lower() in error["detail"].lower(), error
    assert network_count(db) == 2


def test_non_finite_coordinates(client: TestClient, db, world: World, subtests) -> None:
    for constant in ("NaN", "Infinity", "-Infinity", "1e999"):
        with subtests.test(constant=constant):
            text = json.dumps(body(SQUARE)).replace(str(LAT - 0.004), constant, 1)
            assert constant in text
            response = client.post(
                "/networks",
                content=text,
                headers=world.auth("admin") | {"Content-Type": "application/json"},
            )
            error = assert_error(response, 422)
            assert "finite" in error["detail"] or "number" in error["detail"], error
    assert network_count(db) == 2


def test_non_finite_coordinates_in_update(client: TestClient, db, world: World) -> None:
    text = json.dumps({"geometry": SQUARE}).replace(str(LAT - 0.004), "NaN", 1)
    response = client.patch(
        f"/networks/{world.net_x}",
        content=text,
        headers=world.auth("admin") | {"Content-Type": "application/json", "If-Match": '"1"'},
    )
    assert_error(response, 422)
    assert client.get(f"/networks/{world.net_x}").headers["ETag"] == '"1"'


def test_unclosed_ring_is_closed_with_warning(client: TestClient, db, world: World) -> None:
    open_ring = SQUARE["coordinates"][0][:-1]
    response = client.post("/networks", json=body(polygon(open_ring)), headers=world.auth("admin"))
    assert response.status_code == 201, response.text
    (warning,) = response.json()["properties"]["warnings"]
    assert "not closed" in warning
    assert network_count(db) == 3


def test_bow_tie_is_repaired_with_warning(client: TestClient, db, world: World) -> None:
    d = 0.004
    bow_tie = polygon(
        ring(
            (LON - d, LAT - d),
            (LON + d, LAT + d),
            (LON + d, LAT - d),
            (LON - d, LAT + d),
            (LON - d, LAT - d),
        )
    )
    response = client.post("/networks", json=body(bow_tie), headers=world.auth("admin"))
    assert response.status_code == 201, response.text
    feature = response.json()
    (warning,) = feature["properties"]["warnings"]
    assert "repaired" in warning and "Self-intersection" in warning
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert len(feature["geometry"]["coordinates"]) == 2  # the two triangles
    # both triangles together: half the square of 0.008 x 0.008 degrees
    assert 150_000 < feature["properties"]["area_m2"] < 300_000


def test_feature_and_multipolygon_are_accepted(client: TestClient, world: World) -> None:
    admin = world.auth("admin")
    feature = {"type": "Feature", "properties": {}, "geometry": SQUARE}
    assert client.post("/networks", json=body(feature), headers=admin).status_code == 201
    multi = {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}
    created = client.post("/networks", json=body(multi), headers=admin)
    assert created.status_code == 201
    assert "warnings" not in created.json()["properties"]


# the parser itself -----------------------------------------------------------------------------


def test_parser_reports_problems_as_bingeo_errors() -> None:
    limits = GeometryLimits(max_vertices=10, max_area_m2=1e6)
    with pytest.raises(InvalidInput, match="not valid JSON"):
        geojson_to_storage('{"type": "Polygon", "coordinates": [[[NaN, 1]]]}')
    with pytest.raises(InvalidGeometry, match="more than 10 vertices"):
        geojson_to_storage(circle(20), limits=limits)
    with pytest.raises(InvalidGeometry, match="exceeds the limit of 1.0 km²"):
        geojson_to_storage(square(CENTRE_X, 0.01), limits=limits)
    geometry, warnings = geojson_to_storage(json.dumps(SQUARE), label="area")
    assert geometry.geom_type == "MultiPolygon" and geometry.is_valid and warnings == []


def test_belgian_transformers_equal_proj_choice() -> None:
    """The fixed pipelines give what PROJ's own choice gives, everywhere in Belgium, both ways,
    also when first used in a new thread (pyproj builds them again per thread)."""
    rng = np.random.default_rng(3)
    x, y = rng.uniform(17_000, 300_000, 20_000), rng.uniform(16_000, 249_000, 20_000)
    lon, lat = Transformer.from_crs(31370, 4326, always_xy=True).transform(x, y)
    for source, target, points, tolerance in (
        (31370, 4326, (x, y), 1e-9),
        (4326, 31370, (lon, lat), 1e-4),
    ):
        expected = np.array(Transformer.from_crs(source, target, always_xy=True).transform(*points))
        with ThreadPoolExecutor(1) as pool:
            fixed = belgian_transformer(source, target)
            answer = np.array(pool.submit(fixed.transform, *points).result())
        assert np.allclose(answer, expected, rtol=0, atol=tolerance)
