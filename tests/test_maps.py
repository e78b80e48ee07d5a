"""The networks map: colours by kind, styles by status, legend, no personal data, offline mode."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.app import create_app
from bingeo import cli
from bingeo.access import Actor, Principal
from bingeo.db import maps as map_repo
from bingeo.db.models import AreaLevel, Role
from bingeo.demo import NIS_CODE, DemoData, generate_demo
from bingeo.errors import InvalidInput
from bingeo.maps import (
    KIND_COLOURS,
    TEXTS,
    coverage_map,
    network_map,
    save_map,
    single_network_map,
)
from bingeo.members import MemberInput
from bingeo.services import coverage as coverage_service
from bingeo.services.demo import run_demo
from bingeo.services.imports import import_areas, import_networks
from bingeo.services.members import register_member
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

# Names a user could give a network, an area or a code: none may become markup in a map.
HOSTILE = (
    "<img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "</script><script>alert(1)</script>",
    "Sint-Jan's & Co",
)
# The GeoJSON of each map layer as folium writes it into the page.
LAYER_DATA = re.compile(r"_add\((\{.*\})\);$", re.MULTILINE)
SCRIPT_TAGS = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
ASSET_LINKS = re.compile(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', re.IGNORECASE)


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo()


def _features(fmap) -> list[dict]:
    # The GeoJson layers folium holds, as the data it writes into the page.
    features = []
    for child in fmap._children.values():
        data = getattr(child, "data", None)
        if isinstance(data, dict) and data.get("type") == "FeatureCollection":
            features.extend(data["features"])
    return features


def test_map_shows_every_network_with_public_fields(demo: DemoData) -> None:
    networks = demo.networks.assign(coordinator_email="someone@example.be")
    fmap = network_map(networks, areas=demo.wijken, tiles=None, title="Demo title")
    page = fmap.get_root().render()
    for name in demo.networks["name"]:
        assert name in page
    assert "someone@example.be" not in page
    assert "Demo title" in page
    assert "bingeo-legend" in page
    assert "L.control.layers" in page
    for colour in KIND_COLOURS.values():
        assert colour in page
    network_features = [f for f in _features(fmap) if "kind" in f["properties"]]
    assert len(network_features) == len(demo.networks)
    assert set(network_features[0]["properties"]) == {
        "name",
        "kind",
        "status",
        "status_label",
        "area_ha",
    }
    # Coordinates are lon/lat (EPSG:4326) in Belgium.
    lon, lat = shapely.get_coordinates(
        shapely.geometry.shape(network_features[0]["geometry"])
    ).mean(axis=0)
    assert 2.5 < lon < 6.5 and 49.4 < lat < 51.6
    areas = {f["properties"]["name"]: f["properties"]["area_ha"] for f in network_features}
    first = demo.networks.iloc[0]
    assert areas[first["name"]] == pytest.approx(first.geometry.area / 10_000, abs=0.1)


def test_status_changes_the_style(demo: DemoData) -> None:
    networks = demo.networks.iloc[:1]
    active = network_map(networks.assign(status="active"), tiles=None).get_root().render()
    dormant = network_map(networks.assign(status="dormant"), tiles=None).get_root().render()
    assert '"dashArray": "2 4"' in dormant
    assert '"dashArray": "2 4"' not in active


def test_tiles_none_means_no_base_map(demo: DemoData) -> None:
    offline = network_map(demo.networks, tiles=None).get_root().render()
    online = network_map(demo.networks).get_root().render()
    assert "tile.openstreetmap.org" in online
    assert "tile.openstreetmap.org" not in offline
    assert "L.tileLayer" not in offline


def test_map_is_simplified_but_keeps_the_shape(demo: DemoData) -> None:
    fmap = network_map(demo.networks, areas=demo.sectors, tiles=None)
    features = _features(fmap)
    # Reference areas come first, in their order; networks are matched by name.
    by_name = dict(zip(demo.networks["name"], demo.networks.geometry, strict=True))
    original = [
        by_name[f["properties"]["name"]] if "name" in f["properties"] else None for f in features
    ]
    original[: len(demo.sectors)] = list(demo.sectors.geometry)
    shown = gpd.GeoSeries(
        [shapely.geometry.shape(f["geometry"]) for f in features], crs=4326
    ).to_crs(31370)
    assert len(shown) == len(demo.sectors) + len(demo.networks)
    shown_vertices = shapely.get_num_coordinates(shown.values).sum()
    assert shown_vertices < shapely.get_num_coordinates(original).sum()
    for before, after in zip(original, shown, strict=True):
        assert after.is_valid
        # A 2 m tolerance moves boundaries by a few metres at most.
        assert before.hausdorff_distance(after) < 5.0
        assert abs(before.area - after.area) / before.area < 0.01


def test_map_of_networks_read_back_from_postgis(db: Engine, demo: DemoData, tmp_path) -> None:
    path = tmp_path / "networks.geojson"
    demo.networks.to_crs(4326).to_file(path, driver="GeoJSON", engine="pyogrio")
    import_networks(db, path)
    with db.connect() as connection:
        stored = map_repo.networks_frame(connection)
        areas = map_repo.areas_frame(connection, AreaLevel.wijk)
    assert stored.crs.to_epsg() == 31370
    assert list(stored["code"]) == sorted(demo.networks["code"])
    assert areas.empty
    page = network_map(stored, areas=areas, tiles=None).get_root().render()
    assert all(name in page for name in demo.networks["name"])


def test_empty_map_still_renders() -> None:
    empty = gpd.GeoDataFrame(
        {"name": [], "kind": [], "status": []}, geometry=gpd.GeoSeries([]), crs=31370
    )
    page = network_map(empty, tiles=None).get_root().render()
    assert "bingeo-legend" in page


def test_map_of_one_network_counts_without_personal_data(
    db: Engine, settings: Settings, tmp_path
) -> None:
    """Its area, addresses and members counted (equal to PostGIS), no member identity anywhere,
    from the service, the API (analysts of the zone) and the CLI."""
    demo_map = run_demo(db, settings, out_dir=tmp_path / "demo")["map"]
    _assert_local_assets(Path(demo_map))  # the demo's map works from the file, offline
    with db.connect() as connection:
        network_id, code, zone = connection.execute(
            text("SELECT id, code, police_zone_code FROM networks ORDER BY id LIMIT 1")
        ).one()
        covered = connection.execute(
            text(
                "SELECT a.id FROM addresses a JOIN networks n ON ST_Covers(n.geom, a.geom) "
                "WHERE n.id = :n ORDER BY a.id LIMIT 3"
            ),
            {"n": network_id},
        ).scalars()
        covered = list(covered)
    admin = Actor(principal=Principal(name="test", role=Role.admin))
    people = [("Jan Peeters", "jan.peeters@example.be", "+32470111222")]
    people += [("Els Maes", "els.maes@example.be", "+32470333444")]
    for (name, email, phone), address_id in zip(people, covered, strict=False):
        member = MemberInput(
            name=name,
            language="nl",
            channels=("email", "sms"),
            consent_at=dt.datetime.now(dt.UTC),
            email=email,
            phone=phone,
        )
        register_member(db, admin, network_id, address_id=address_id, member=member)
    with db.connect() as connection:
        addresses = connection.execute(
            text(
                "SELECT count(*) FROM addresses a JOIN networks n ON ST_Covers(n.geom, a.geom) "
                "WHERE n.id = :n"
            ),
            {"n": network_id},
        ).scalar_one()
        per_sector = dict(
            connection.execute(
                text(
                    "SELECT s.code, count(*) FROM addresses a "
                    "JOIN networks n ON ST_Covers(n.geom, a.geom) AND n.id = :n "
                    "JOIN LATERAL (SELECT code FROM reference_areas r WHERE r.level = 'sector' "
                    "AND ST_Covers(r.geom, a.geom) ORDER BY r.id LIMIT 1) s ON true GROUP BY 1"
                ),
                {"n": network_id},
            ).all()
        )
    assert addresses > 0

    found = coverage_service.network_figures(db, admin, code)
    assert found.figures["addresses"] == addresses
    assert found.figures["members"] == len(people)
    assert found.figures["members_per_1000"] == 1000 * len(people) / addresses
    assert dict(zip(found.areas["code"], found.areas["addresses"], strict=True)) == per_sector

    add_user(db, "map-analyst", Role.police_analyst, police_zone_code=zone)
    add_user(db, "map-other", Role.police_analyst, police_zone_code="elsewhere")
    token = create_token(db, "map-analyst")[1]
    other = create_token(db, "map-other")[1]
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/networks/{network_id}/map").status_code == 401
        refused = client.get(f"/networks/{network_id}/map", headers=_bearer(other))
        assert refused.status_code == 403
        answer = client.get(f"/networks/{network_id}/map", headers=_bearer(token))
        assert client.get("/networks/999999/map", headers=_bearer(token)).status_code == 404
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    out = tmp_path / "network.html"
    result = CliRunner().invoke(
        cli.app,
        ["coverage", "--network", code, "--out", str(out)],
        env={"BINGEO_DATABASE_NAME": settings.database_name},
    )
    assert result.exit_code == 0, result.output
    # The analyst has no member rights: two members read "< 5" (the layer data is HTML-escaped
    # and folium writes "&" as \u0026); the local operator of the CLI sees the exact count.
    assert "Leden: <b>&lt; 5</b>" in answer.text
    assert '"members": "\\u0026lt; 5"' in answer.text
    assert f"Leden: <b>{len(people)}</b>" not in answer.text
    assert f"Leden: <b>{len(people)}</b>" in out.read_text()
    assert f'"members": {len(people)}' in out.read_text()
    for page in (answer.text, out.read_text()):
        assert f"Adressen: <b>{addresses:,}</b>".replace(",", ".") in page
        assert f'"addresses": {addresses}' in page
        for name, email, phone in people:
            assert name not in page and email not in page and phone not in page
            assert email.split("@")[0] not in page and phone[3:] not in page
        assert "Els" not in page and "Peeters" not in page


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _hostile(count: int) -> list[str]:
    return [HOSTILE[i % len(HOSTILE)] for i in range(count)]


def _layer_texts(page: str) -> list[str]:
    """Every text property of every map layer, as the page's tooltips will show it (as HTML)."""
    blobs = LAYER_DATA.findall(page)
    assert blobs, "no layer data in the page"
    return [
        value
        for blob in blobs
        for feature in json.loads(blob)["features"]
        for value in feature["properties"].values()
        if isinstance(value, str)
    ]


def _assert_escaped(page: str, texts: list[str]) -> None:
    """No hostile text in the page as markup; each escaped in the layers' tooltip data."""
    shown = _layer_texts(page)
    for value in shown:
        # Each tooltip text is escaped text: it shows as itself, it is no markup.
        assert html.escape(html.unescape(value)) == value, value
    joined = "\n".join(shown)
    for hostile in set(texts):
        assert hostile not in page
        assert html.escape(hostile) in joined, hostile


def test_hostile_texts_are_escaped_in_every_map(demo: DemoData) -> None:
    """Names of networks and areas, overlap pairs and gap codes reach the page only escaped, in
    the networks map (the demo's), the coverage map (API and CLI) and the map of one network."""
    count = len(demo.networks)
    networks = demo.networks.assign(name=_hostile(count), code=_hostile(count)[::-1])
    sectors = demo.sectors.iloc[:12]
    areas = gpd.GeoDataFrame(
        {
            "level": "sector",
            "code": _hostile(len(sectors))[::-1],
            "name": _hostile(len(sectors)),
            "name_nl": _hostile(len(sectors)),
            "addresses": 100,
            "covered": 40,
            "covered_bin": 30,
            "covered_bin_z": 10,
            "share_covered": 0.4,
            "networks": 2,
            "members_per_1000": 12.5,
        },
        geometry=sectors.geometry.values,
        crs=sectors.crs,
    )
    first, second = networks.geometry.iloc[0], networks.geometry.iloc[1]
    overlaps = gpd.GeoDataFrame(
        {
            "name_a": [HOSTILE[0], HOSTILE[2]],
            "name_b": [HOSTILE[1], HOSTILE[3]],
            "overlap_m2": [1200.0, 800.0],
            "share_a": [0.1, 0.2],
            "share_b": [0.3, 0.4],
            "shared_addresses": [5, 6],
        },
        geometry=[first.buffer(-20), second.buffer(-20)],
        crs=networks.crs,
    )
    gaps = gpd.GeoDataFrame(
        {"rank": [1], "areas": [2], "addresses": [90], "uncovered": [80]}
        | {"codes": [", ".join(HOSTILE)]},
        geometry=[sectors.geometry.iloc[0]],
        crs=sectors.crs,
    )
    every = list(HOSTILE)
    demo_map = network_map(networks, areas=areas, tiles=None, title=HOSTILE[1])
    page = demo_map.get_root().render()
    _assert_escaped(page, every)
    assert f"<b>{html.escape(HOSTILE[1])}</b>" in page  # the legend's title
    page = (
        coverage_map(
            areas, networks, overlaps=overlaps, gaps=gaps, title=f"Coverage of {HOSTILE[2]}"
        )
        .get_root()
        .render()
    )
    _assert_escaped(page, every)
    assert html.escape(f"Coverage of {HOSTILE[2]}") in page
    figures = {"addresses": 12, "members": 3, "members_per_1000": 250.0}
    for i, hostile in enumerate(HOSTILE):
        one = single_network_map(networks.iloc[[i]], figures, areas.iloc[[i]]).get_root().render()
        _assert_escaped(one, [hostile])
        assert f"<b>{html.escape(hostile)}</b>" in one  # the network's name heads the legend


def test_map_pages_escape_stored_names_and_have_the_app_policy(
    db: Engine, settings: Settings, tmp_path
) -> None:
    """Networks and sectors with hostile names, imported from files: the coverage map and the
    map of a network (API, CLI) show them escaped; the API serves both pages with the policy
    of /app, plus a fresh nonce that only folium's inline scripts carry."""
    run_demo(db, settings, out_dir=tmp_path / "demo")
    demo = generate_demo()
    named = demo.networks.assign(name=_hostile(len(demo.networks)))
    named.to_crs(4326).to_file(tmp_path / "networks.geojson", driver="GeoJSON", engine="pyogrio")
    import_networks(db, tmp_path / "networks.geojson")
    sectors = demo.sectors.assign(name_nl=_hostile(len(demo.sectors)))
    sectors.to_file(tmp_path / "sectors.gpkg", layer="sectors", driver="GPKG", engine="pyogrio")
    import_areas(db, tmp_path / "sectors.gpkg", AreaLevel.sector, layer="sectors")
    with db.connect() as connection:
        network_id = connection.execute(
            text("SELECT id FROM networks WHERE name = :name"), {"name": HOSTILE[0]}
        ).scalar()
    assert network_id is not None
    add_user(db, "csp-admin", Role.admin)
    token = create_token(db, "csp-admin")[1]
    with TestClient(create_app(settings)) as client:
        app_policy = client.get("/app").headers["content-security-policy"]
        coverage_pages = [
            client.get(f"/maps/coverage?municipality={NIS_CODE}", headers=_bearer(token))
            for _ in range(2)
        ]
        network_page = client.get(f"/networks/{network_id}/map", headers=_bearer(token))
    assert "script-src 'self';" in app_policy
    nonces = set()
    for answer in [*coverage_pages, network_page]:
        assert answer.status_code == 200, answer.text
        policy = answer.headers["content-security-policy"]
        nonce = re.fullmatch(r".*script-src 'self' 'nonce-([A-Za-z0-9+/]{24})';.*", policy)
        assert nonce is not None, policy
        nonces.add(nonce[1])
        # The same policy as the app's but for the nonce, and the app's other headers.
        assert policy.replace(f" 'nonce-{nonce[1]}'", "") == app_policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        # Every script of the page carries the nonce (folium's inline ones need it).
        tags = SCRIPT_TAGS.findall(answer.text)
        assert len(tags) >= 3 and all(f'nonce="{nonce[1]}"' in tag for tag in tags), tags
        # Scripts and styles from bingeo's vendored copies only.
        links = ASSET_LINKS.findall(answer.text)
        assert links and all(link.startswith("/static/vendor/") for link in links), links
    assert len(nonces) == 3  # a fresh nonce for each answer
    _assert_escaped(coverage_pages[0].text, list(HOSTILE))
    _assert_escaped(network_page.text, [HOSTILE[0]])
    out = tmp_path / "coverage.html"
    result = CliRunner().invoke(
        cli.app,
        ["coverage", "--municipality", NIS_CODE, "--out", str(out)],
        env={"BINGEO_DATABASE_NAME": settings.database_name},
    )
    assert result.exit_code == 0, result.output
    _assert_escaped(out.read_text(), list(HOSTILE))


# offline, in the user's language, metric ------------------------------------------------------


def _assert_local_assets(page_path: Path) -> None:
    """Every script and stylesheet of the page is a file beside it (no URL, no CDN)."""
    links = ASSET_LINKS.findall(page_path.read_text())
    assert len(links) >= 2  # Leaflet's script and stylesheet at least
    for link in links:
        assert "://" not in link and not link.startswith("/"), link
        assert (page_path.parent / link).is_file(), link


def test_written_map_carries_its_assets(demo: DemoData, tmp_path: Path) -> None:
    path = save_map(
        lambda assets: network_map(demo.networks, tiles=None, assets_url=assets),
        tmp_path / "kaart.html",
    )
    _assert_local_assets(path)
    folder = tmp_path / "kaart_files"
    # Leaflet's control images come along; only what the map uses is copied.
    assert (folder / "leaflet" / "dist" / "images" / "layers.png").is_file()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 5_000_000
    assert not (folder / "leaflet-draw").exists() and not (folder / "swagger-ui-dist").exists()


def test_maps_speak_dutch_or_french(demo: DemoData) -> None:
    areas = _coverage_frame(demo)
    for language, words in TEXTS.items():
        pages = [
            network_map(demo.networks, tiles=None, language=language).get_root().render(),
            coverage_map(areas, demo.networks, tiles=None, language=language).get_root().render(),
        ]
        for page in pages:
            for key in ("network", "kind", "area_ha", "BIN", "BIN-Z"):
                assert words[key] in page, (language, key)
            for english in ("Network", "Area (ha)", "BIN (residents)", "information evening"):
                assert english not in page, (language, english)
        assert words["share_layer"].format(level=words["wijk"]) in pages[1]
        assert words["no_addresses"] in pages[1]
    with pytest.raises(InvalidInput, match="nl or fr"):
        network_map(demo.networks, tiles=None, language="en")


def test_scale_is_metric(demo: DemoData) -> None:
    page = network_map(demo.networks, tiles=None).get_root().render()
    assert "L.control.scale({imperial: false})" in page
    assert "L.control.scale()" not in page  # folium's own, with miles


def test_only_areal_parts_reach_the_map(demo: DemoData) -> None:
    """A GeometryCollection (an area with a stray line, as repairs and intersections give) is
    drawn as its polygons: Leaflet makes a collection a group, which breaks the tooltips."""
    networks = demo.networks.iloc[:2].copy()
    first = networks.geometry.iloc[0]
    ring = shapely.get_exterior_ring(shapely.get_parts(first)[0])
    networks.loc[networks.index[0], "geometry"] = shapely.GeometryCollection([first, ring])
    networks.loc[networks.index[1], "geometry"] = shapely.LineString(ring.coords)
    features = _features(network_map(networks, tiles=None))
    assert [f["geometry"]["type"] for f in features] == ["MultiPolygon"]
    assert features[0]["properties"]["name"] == networks["name"].iloc[0]
    assert shapely.geometry.shape(features[0]["geometry"]).area > 0


def _coverage_frame(demo: DemoData) -> gpd.GeoDataFrame:
    count = len(demo.wijken)
    return gpd.GeoDataFrame(
        {
            "level": ["wijk"] * count,
            "code": demo.wijken["wijk_code"].to_numpy(),
            "name": demo.wijken["name_nl"].to_numpy(),
            "addresses": [100] * count,
            "covered": [50] * count,
            "covered_bin": [40] * count,
            "covered_bin_z": [10] * count,
            "share_covered": [0.5] * count,
            "networks": [1] * count,
            "members_per_1000": [3.0] * count,
        },
        geometry=demo.wijken.geometry.to_numpy(),
        crs=demo.wijken.crs,
    )
