"""Hardened geometry input: every bad geometry gets a 4xx naming the problem; nothing is stored."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import shapely
import shapely.affinity
from api_helpers import CENTRE_X, World, assert_error, network_count, square, star
from fastapi.testclient import TestClient
from pyproj import Transformer

from api.app import create_app
from bingeo.errors import InvalidGeometry, InvalidInput
from bingeo.geometry import (
    GeometryLimits,
    belgian_transformer,
    check_cost,
    geojson_to_storage,
    json_value,
    polygonal,
)
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


# the cost of a geometry is bounded before any repair -------------------------------------------


def comb(teeth: int, gap: float = 1e-6) -> dict:
    """A valid polygon of slanted teeth ``gap`` degrees apart: every edge's extent overlaps
    nearly every other's, so a validity check compares about n² pairs."""
    lon, lat = CENTRE_X
    ring = []
    for i in range(teeth):
        x = lon + 2 * i * gap
        ring += [[x, lat], [x + 0.01, lat + 0.01], [x + 0.01 + gap, lat + 0.01], [x + gap, lat]]
    ring += [[ring[-1][0], lat - 0.01], [lon, lat - 0.01], ring[0]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.mark.parametrize("vertices", [13, 21, 101, 1001, 19999])
def test_star_polygons_are_refused_before_repair(vertices: int) -> None:
    """A star crosses itself about n²/4 times; repairing one of 100 points took minutes."""
    with pytest.raises(InvalidGeometry, match="area: the area crosses itself more than 50 times"):
        geojson_to_storage(star(vertices), label="area")
    geometry = shapely.Polygon(star(vertices)["coordinates"][0])
    with pytest.raises(InvalidGeometry, match="crosses itself"):
        check_cost(geometry, label="area", limits=GeometryLimits())


def test_few_crossings_are_repaired_within_the_limits() -> None:
    """A star of 11 points (44 crossings) is repaired into 23 parts; fewer allowed parts or
    crossings refuse it, each with its own reason."""
    geometry, warnings = geojson_to_storage(star(11), label="area")
    assert geometry.is_valid and len(geometry.geoms) == 23
    assert warnings and "invalid polygon repaired" in warnings[0]
    with pytest.raises(InvalidGeometry, match="split it into 22 more parts \\(limit 5\\)"):
        geojson_to_storage(star(11), label="area", limits=GeometryLimits(max_repair_parts=5))
    with pytest.raises(InvalidGeometry, match="crosses itself more than 40 times"):
        geojson_to_storage(star(11), label="area", limits=GeometryLimits(max_self_intersections=40))
    with pytest.raises(InvalidGeometry, match="repaired area has more than 100 vertices"):
        geojson_to_storage(star(11), label="area", limits=GeometryLimits(max_vertices=100))


def test_intricate_outlines_are_refused() -> None:
    """A valid comb whose edges lie side by side is refused before GEOS checks it (4.7 s for
    GEOS on 20,000 points); the same comb turned by 45° is cheap to check and accepted."""
    with pytest.raises(InvalidGeometry, match="too intricate to check"):
        geojson_to_storage(comb(4990), label="area")
    turned = shapely.affinity.rotate(shapely.Polygon(comb(500)["coordinates"][0]), 45)
    check_cost(turned, label="area", limits=GeometryLimits())
    limits = GeometryLimits(max_edge_pairs=100)
    with pytest.raises(InvalidGeometry, match="more than 100 pairs of edges"):
        check_cost(turned, label="area", limits=limits)


def test_crossings_are_counted_exactly() -> None:
    """The count sees crossings between rings and polygons too; touching neighbours along a ring
    are no crossing; a valid polygon with a hole has none."""
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])
    none = GeometryLimits(max_self_intersections=0)
    with pytest.raises(InvalidGeometry, match="more than 0 times"):
        check_cost(bowtie, label="x", limits=none)
    check_cost(bowtie, label="x", limits=GeometryLimits(max_self_intersections=1))
    holed = shapely.box(0, 0, 10, 10).difference(shapely.box(2, 2, 8, 8))
    check_cost(holed, label="x", limits=none)
    overlapping = shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)])
    with pytest.raises(InvalidGeometry, match="more than 1 times"):
        check_cost(overlapping, label="x", limits=GeometryLimits(max_self_intersections=1))
    check_cost(overlapping, label="x", limits=GeometryLimits(max_self_intersections=2))


_TO_LONLAT = Transformer.from_crs(31370, 4326, always_xy=True)


def test_real_sectors_are_accepted_and_repaired_as_before(real_data) -> None:
    """The 254 Gent sectors (4 with self-crossing rings from rounded coordinates) all pass the
    bound and are repaired exactly as make_valid repairs them."""
    sectors = json.loads((real_data / "gent" / "gent_statistical_sectors.geojson").read_text())
    repaired = 0
    for feature in sectors["features"]:
        geometry, warnings = geojson_to_storage(feature, label=feature["properties"]["nis9_code"])
        drawn = shapely.geometry.shape(feature["geometry"])
        if not drawn.is_valid:
            repaired += 1
            assert warnings and "repaired" in warnings[0]
            lonlat = shapely.transform(geometry, _TO_LONLAT.transform, interleaved=False)
            assert abs(lonlat.area - shapely.make_valid(drawn).area) < 1e-9
    assert repaired == 4


def test_limits_come_from_the_settings() -> None:
    settings = Settings(max_self_intersections=0, max_edge_pairs=10, max_repair_parts=1)
    limits = settings.geometry_limits()
    assert (limits.max_self_intersections, limits.max_edge_pairs, limits.max_repair_parts) == (
        0,
        10,
        1,
    )


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "9" * 5000],
)
def test_unparsable_json_is_invalid_input(text: str) -> None:
    """Nesting deeper than the parser recurses, or an integer of thousands of digits."""
    with pytest.raises(InvalidInput, match="not valid JSON"):
        geojson_to_storage(text)
    with pytest.raises(InvalidInput, match="not valid JSON"):
        json_value(text.encode(), label="body")


def test_stars_inside_nested_collections_are_bounded_too() -> None:
    """A GIS file may hold collections of collections: their polygons count as well."""
    inner = shapely.GeometryCollection([shapely.Polygon(star(101)["coordinates"][0])])
    nested = shapely.GeometryCollection([inner, shapely.LineString([(0, 0), (1, 1)])])
    with pytest.raises(InvalidGeometry, match="crosses itself"):
        polygonal(nested, label="file")
    square_part = shapely.Polygon(square(CENTRE_X)["coordinates"][0])
    kept, reason = polygonal(
        shapely.GeometryCollection([shapely.GeometryCollection([square_part])]), label="file"
    )
    assert reason is None and kept.equals(shapely.MultiPolygon([square_part]))
