"""OGC API - Features: the Gent sectors and a few networks, read by GDAL and by a plain client."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from db_helpers import empty_tables
from fastapi.testclient import TestClient
from live_server import live_server
from sqlalchemy import Engine

from api.app import create_app
from bingeo.geometry import bbox_to_storage
from bingeo.services.imports import import_areas, import_networks
from bingeo.settings import Settings

GENT_SECTORS = 254
# About 2.5 by 2 km around the Korenmarkt.
CENTRE_BBOX = (3.705, 51.045, 3.74, 51.063)
NETWORKS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"code": "GENT-1", "name": "BIN Kouter", "kind": "BIN"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[3.720, 51.050], [3.730, 51.050], [3.730, 51.056], [3.720, 51.056]]
                    + [[3.720, 51.050]]
                ],
            },
        },
        {
            "type": "Feature",
            "properties": {"code": "GENT-2", "name": "BIN-Z Zwijnaarde", "kind": "BIN-Z"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[3.700, 51.000], [3.712, 51.000], [3.712, 51.008], [3.700, 51.008]]
                    + [[3.700, 51.000]]
                ],
            },
        },
    ],
}


@pytest.fixture(scope="module")
def gent(engine: Engine, real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test database with the Gent sectors and two networks; the sectors file."""
    empty_tables(engine)
    sectors = real_data / "gent" / "gent_statistical_sectors.geojson"
    assert import_areas(engine, sectors, "sector").stored == GENT_SECTORS
    networks = tmp_path_factory.mktemp("networks") / "networks.geojson"
    networks.write_text(json.dumps(NETWORKS))
    assert import_networks(engine, networks).stored == 2
    return sectors


@pytest.fixture(scope="module")
def client(gent: Path, settings: Settings) -> Iterator[TestClient]:
    """A client of the app on the loaded test database."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def server(gent: Path, settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on a free local port; its base URL."""
    with live_server(settings) as base:
        yield base


def test_gdal_lists_the_collections(server: str) -> None:
    result = _run(["ogrinfo", "-ro", "-so", f"OAPIF:{server}/"])
    for collection in ("networks", "sectors", "wijken", "municipalities", "police-zones"):
        assert f": {collection} (" in result.stdout, result.stdout


def test_gdal_reads_every_gent_sector(server: str, gent: Path, tmp_path: Path) -> None:
    # GDAL 3.6 asks for 10 features a page: every sector is read only if the next links work.
    out = tmp_path / "sectors.geojson"
    _run(["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{server}/", "sectors"])
    read = gpd.read_file(out)
    source = gpd.read_file(gent)
    assert len(read) == GENT_SECTORS
    assert sorted(read["code"]) == sorted(source["nis9_code"])
    assert set(read["level"]) == {"sector"}
    # Same places: each sector read back is its source polygon (a few source polygons are
    # invalid and were repaired on import, hence make_valid and a 1 % margin).
    merged = read.set_index("code").to_crs(31370).geometry.make_valid()
    original = source.set_index("nis9_code").to_crs(31370).geometry.make_valid()
    original = original.loc[merged.index]
    difference = merged.symmetric_difference(original, align=False).area
    assert (difference.to_numpy() < 0.01 * original.area.to_numpy()).all()

    info = _run(["ogrinfo", "-ro", "-al", "-q", f"OAPIF:{server}/", "networks"])
    assert info.stdout.count("OGRFeature(networks)") == 2
    assert "BIN Kouter" in info.stdout and "BIN-Z Zwijnaarde" in info.stdout


def test_landing_page_and_conformance(client: TestClient) -> None:
    landing = client.get("/")
    assert landing.status_code == 200
    links = {link["rel"]: link for link in landing.json()["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert links["service-desc"]["href"].endswith("/openapi.json")
    assert client.get(links["service-desc"]["href"]).status_code == 200
    assert client.get(links["service-doc"]["href"]).status_code == 200
    conforms = client.get(links["conformance"]["href"]).json()["conformsTo"]
    base = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    assert {base + "core", base + "oas30", base + "geojson"} <= set(conforms)
    assert client.get("/", params={"f": "json"}).status_code == 200


def test_collections_with_extents_in_lon_lat(client: TestClient, gent: Path) -> None:
    body = client.get("/collections").json()
    by_id = {c["id"]: c for c in body["collections"]}
    assert set(by_id) == {
        "networks",
        "sectors",
        "wijken",
        "deelgemeenten",
        "municipalities",
        "police-zones",
    }
    sectors = client.get("/collections/sectors").json()
    assert sectors == by_id["sectors"]
    assert sectors["itemType"] == "feature"
    assert sectors["extent"]["spatial"]["crs"].endswith("/OGC/1.3/CRS84")
    items = [link for link in sectors["links"] if link["rel"] == "items"]
    assert items[0]["type"] == "application/geo+json"
    assert items[0]["href"].endswith("/collections/sectors/items")
    expected = gpd.read_file(gent).total_bounds
    (found,) = sectors["extent"]["spatial"]["bbox"]
    assert found == pytest.approx(list(expected), abs=1e-5)
    # Collections without data have no extent rather than a made-up one.
    assert "extent" not in by_id["municipalities"]
    assert by_id["networks"]["extent"]["spatial"]["bbox"][0] == pytest.approx(
        [3.700, 51.000, 3.730, 51.056], abs=1e-5
    )


def test_items_page_with_links(client: TestClient, settings: Settings) -> None:
    first = client.get("/collections/sectors/items", params={"limit": 100})
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/geo+json")
    body = first.json()
    assert body["numberMatched"] == GENT_SECTORS
    assert body["numberReturned"] == 100
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert "prev" not in links
    second = client.get(links["next"]).json()
    third = client.get({x["rel"]: x["href"] for x in second["links"]}["next"]).json()
    assert third["numberReturned"] == GENT_SECTORS - 200
    assert "next" not in {link["rel"] for link in third["links"]}
    prev = {x["rel"]: x["href"] for x in third["links"]}["prev"]
    assert client.get(prev).json()["features"] == second["features"]
    codes = [f["id"] for page in (body, second, third) for f in page["features"]]
    assert len(set(codes)) == GENT_SECTORS

    feature = body["features"][0]
    assert set(feature["properties"]) == {
        "code",
        "name_nl",
        "name_fr",
        "nis_code",
        "parent_code",
        "level",
    }
    lon, lat = shapely.geometry.shape(feature["geometry"]).representative_point().coords[0]
    assert 3.5 < lon < 3.9 and 50.9 < lat < 51.2  # RFC 7946: longitude first

    default = client.get("/collections/sectors/items").json()
    assert default["numberReturned"] == min(settings.page_limit_default, GENT_SECTORS)


def test_limit_is_capped(engine: Engine, gent: Path, settings: Settings) -> None:
    capped = settings.model_copy(update={"page_limit_default": 5, "page_limit_max": 20})
    with TestClient(create_app(capped)) as small:
        assert small.get("/collections/sectors/items").json()["numberReturned"] == 5
        body = small.get("/collections/sectors/items", params={"limit": 500}).json()
        assert body["numberReturned"] == 20
        assert body["numberMatched"] == GENT_SECTORS
        next_link = {x["rel"]: x["href"] for x in body["links"]}["next"]
        assert "limit=20" in next_link and "offset=20" in next_link


def test_links_name_the_configured_base_url_not_the_host_header(
    engine: Engine, gent: Path, settings: Settings
) -> None:
    public = settings.model_copy(
        update={"public_base_url": "https://bin.example.be/api/", "page_limit_default": 5}
    )
    forged = {"Host": "evil.example.com", "X-Forwarded-Host": "evil.example.com"}
    with TestClient(create_app(public)) as client:
        answers = [
            client.get(path, headers=forged).json()
            for path in ("/", "/collections", "/collections/sectors/items?f=json")
        ]
        answers.append(client.get("/networks", params={"limit": 1}, headers=forged).json())
    hrefs = [
        link["href"]
        for answer in answers
        for link in answer["links"] + [x for c in answer.get("collections", []) for x in c["links"]]
    ]
    assert len(hrefs) > 8 and not any("evil" in href for href in hrefs)
    assert all(href.startswith("https://bin.example.be/api/") for href in hrefs), hrefs
    assert "https://bin.example.be/api/collections/sectors/items?f=json" in hrefs
    assert "https://bin.example.be/api/collections/sectors/items?offset=5&limit=5" in hrefs


def test_one_feature_by_code(client: TestClient) -> None:
    response = client.get("/collections/sectors/items/44021A02-")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    feature = response.json()
    assert feature["id"] == "44021A02-"
    assert feature["properties"]["level"] == "sector"
    assert feature["properties"]["nis_code"] == "44021"
    assert {link["rel"] for link in feature["links"]} == {"self", "collection"}

    networks = client.get("/collections/networks/items").json()["features"]
    code_by_id = {f["id"]: f["properties"]["code"] for f in networks}
    for network_id, code in code_by_id.items():
        one = client.get(f"/collections/networks/items/{network_id}").json()
        assert one["properties"]["code"] == code


def test_bbox_matches_an_independent_intersection(client: TestClient, gent: Path) -> None:
    bbox = ",".join(str(v) for v in CENTRE_BBOX)
    body = client.get("/collections/sectors/items", params={"bbox": bbox, "limit": 1000}).json()
    found = {f["id"] for f in body["features"]}
    assert body["numberMatched"] == len(found)
    source = gpd.read_file(gent)
    # The filter is the Lambert 72 bounds of the lon/lat box (see the route): the same with
    # geopandas on the source file, and the exact lon/lat box must be inside it.
    lambert = source.to_crs(31370)
    expected = set(
        source.loc[lambert.intersects(shapely.box(*bbox_to_storage(CENTRE_BBOX))), "nis9_code"]
    )
    exact = set(source.loc[source.intersects(shapely.box(*CENTRE_BBOX)), "nis9_code"])
    assert found == expected
    assert exact <= found
    assert 10 < len(found) < GENT_SECTORS

    networks = client.get("/collections/networks/items", params={"bbox": bbox}).json()
    assert [f["properties"]["code"] for f in networks["features"]] == ["GENT-1"]


@pytest.mark.parametrize(
    "path",
    [
        "/collections/streets",
        "/collections/streets/items",
        "/collections/streets/items/1",
        "/collections/sectors/items/NOPE",
        "/collections/networks/items/999999",
        "/collections/networks/items/GENT-1",
    ],
)
def test_unknown_collection_or_feature_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"detail", "code"} and body["code"] == "not_found"


def test_bad_parameters_get_the_one_error_shape(client: TestClient) -> None:
    wrong_format = client.get("/collections", params={"f": "html"})
    assert wrong_format.status_code == 400
    assert wrong_format.json()["code"] == "bad_request"
    assert client.get("/collections/sectors/items", params={"f": "json"}).status_code == 200
    bad_bbox = client.get("/collections/sectors/items", params={"bbox": "3.7,51"})
    assert bad_bbox.status_code == 422
    assert set(bad_bbox.json()) == {"detail", "code"}
    assert client.get("/collections/sectors/items", params={"limit": 0}).status_code == 422


def _run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result
