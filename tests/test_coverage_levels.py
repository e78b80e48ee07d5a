"""Coverage at every level on Bierbeek (no sector polygons), candidate zones validated as
proposals, and member counts below 5 suppressed for roles without member rights."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from db_helpers import empty_tables
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from test_coverage import postgis_coverage

from api.app import create_app
from bingeo import coverage as core
from bingeo.access import Actor, Principal
from bingeo.db.models import Role
from bingeo.members import MemberInput
from bingeo.services import coverage as service
from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.members import register_member
from bingeo.services.streetlists import derive_from_street_list, store_derived
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

ADMIN = Actor(principal=Principal(name="test", role=Role.admin))
CURRENT_BIERBEEK = {
    "BIERBEEK-MARTINUSBERG",
    "BIERBEEK-PIMBERG",
    "BIERBEEK-KRIJKELBERG",
    "BIERBEEK-OPVELP",
}
CONTEXT_LAYERS = {
    "municipalities": "municipality",
    "deelgemeenten": "deelgemeente",
    "wijken": "wijk",
    "police_zones": "police_zone",
}


@pytest.fixture(scope="module")
def bierbeek(engine: Engine, real_data: Path) -> dict:
    """The Bierbeek context (wijken, deelgemeenten, municipalities, police zones), the CRAB
    addresses and Bierbeek's four current BINs built from their published street lists; one
    member registered in BIN Opvelp. Facts: zone code, Opvelp's id, the member's wijk."""
    empty_tables(engine)
    folder = real_data / "bierbeek_bin"
    for layer, level in CONTEXT_LAYERS.items():
        import_areas(engine, folder / "bin_municipalities_context.gpkg", level, layer=layer)
    import_addresses(engine, folder / "addresses_crab_bin_municipalities.csv", skip_invalid=True)
    derived = derive_from_street_list(
        engine,
        folder / "bin_streets_published.csv",
        networks_csv=folder / "bin_networks_published.csv",
        only=CURRENT_BIERBEEK,
    )
    store_derived(engine, derived)
    with engine.connect() as connection:
        zone = connection.execute(
            text("SELECT police_zone_code FROM police_zone_municipalities WHERE nis_code = '24011'")
        ).scalar_one()
        opvelp, address, wijk = connection.execute(
            text(
                "SELECT n.id, a.address_id, w.code FROM networks n "
                "JOIN address_networks a ON a.network_id = n.id "
                "JOIN address_areas x ON x.address_id = a.address_id AND x.level = 'wijk' "
                "JOIN reference_areas w ON w.id = x.area_id "
                "WHERE n.code = 'BIERBEEK-OPVELP' ORDER BY a.address_id LIMIT 1"
            )
        ).one()
    register_member(
        engine,
        ADMIN,
        opvelp,
        address_id=address,
        member=MemberInput(
            name="Lone Member",
            language="nl",
            channels=("email",),
            consent_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
            email="lone@example.org",
        ),
    )
    return {"zone": zone, "opvelp": opvelp, "wijk": wijk}


def _actors(zone: str) -> dict[str, tuple[Actor, dict]]:
    """The analyst, the officer (of the zone) and the planner (of Bierbeek), with their scope."""
    return {
        "analyst": (
            Actor(principal=Principal(name="a", role=Role.police_analyst, police_zone_code=zone)),
            {"zone": zone},
        ),
        "officer": (
            Actor(principal=Principal(name="o", role=Role.police_officer, police_zone_code=zone)),
            {"zone": zone},
        ),
        "planner": (
            Actor(principal=Principal(name="p", role=Role.municipality_planner, nis_code="24011")),
            {"municipality": "24011"},
        ),
    }


def _postgis_wijk_addresses(engine: Engine) -> int:
    query = """
        SELECT count(DISTINCT a.id) FROM addresses a JOIN reference_areas w
        ON w.level = 'wijk' AND w.nis_code = '24011' AND ST_Covers(w.geom, a.geom)
    """
    with engine.connect() as connection:
        return connection.execute(text(query)).scalar_one()


def test_bierbeek_defaults_to_wijk_for_every_role(bierbeek: dict, engine: Engine) -> None:
    """Without sector polygons every role sees Bierbeek per wijk, with its addresses and its
    four BINs (not zeros per sector)."""
    expected = postgis_coverage(engine, "wijk")
    addresses = _postgis_wijk_addresses(engine)
    assert addresses > 3000
    for role, (actor, scope) in _actors(bierbeek["zone"]).items():
        result = service.coverage(engine, actor, **scope)
        assert result.level.value == "wijk", role
        assert "sector" not in result.levels and result.levels[0] == "wijk"
        assert result.totals["addresses"] == addresses, role
        assert set(result.networks["code"]) == CURRENT_BIERBEEK, role
        assert 0 < result.totals["covered"] < addresses
        assert len(result.areas) == 11
        for row in result.areas.itertuples():
            want = expected[row.code]
            assert (row.addresses, row.covered, row.networks) == (
                want["addresses"],
                want["covered"],
                want["networks"],
            ), (role, row.code)


def test_network_map_defaults_to_wijk_in_bierbeek(bierbeek: dict, engine: Engine) -> None:
    found = service.network_figures(engine, ADMIN, "BIERBEEK-OPVELP")
    assert found.level.value == "wijk"
    query = """
        SELECT w.code, count(*) FROM address_networks an
        JOIN networks n ON n.id = an.network_id AND n.code = 'BIERBEEK-OPVELP'
        JOIN addresses a ON a.id = an.address_id
        JOIN LATERAL (SELECT code FROM reference_areas r WHERE r.level = 'wijk'
                      AND ST_Covers(r.geom, a.geom) ORDER BY r.id LIMIT 1) w ON true
        GROUP BY 1
    """
    with engine.connect() as connection:
        expected = dict(connection.execute(text(query)).all())
    assert expected and dict(zip(found.areas["code"], found.areas["addresses"], strict=True)) == (
        expected
    )


def _scope_codes(engine: Engine, level: str, zone: str) -> set[str]:
    query = """
        SELECT code FROM reference_areas WHERE level = :level AND CASE
            WHEN level = 'police_zone' THEN code = :zone
            WHEN level = 'municipality' THEN code IN (
                SELECT nis_code FROM police_zone_municipalities WHERE police_zone_code = :zone)
            ELSE nis_code IN (
                SELECT nis_code FROM police_zone_municipalities WHERE police_zone_code = :zone)
        END
    """
    with engine.connect() as connection:
        return set(connection.execute(text(query), {"level": level, "zone": zone}).scalars())


@pytest.mark.parametrize("level", ["wijk", "deelgemeente", "municipality", "police_zone"])
def test_every_level_equals_postgis(bierbeek: dict, engine: Engine, level: str) -> None:
    zone = bierbeek["zone"]
    result = service.coverage(engine, ADMIN, zone=zone, level=level)
    expected = postgis_coverage(engine, level)
    codes = _scope_codes(engine, level, zone)
    assert codes and set(result.areas["code"]) == codes
    compared = 0
    for row in result.areas.itertuples():
        want = expected[row.code]
        got = (row.addresses, row.covered, row.covered_bin, row.networks, row.members)
        assert got == (
            want["addresses"],
            want["covered"],
            want["covered_bin"],
            want["networks"],
            want["members"],
        ), row.code
        compared += 1
    assert compared == len(codes)
    assert result.totals["addresses"] == sum(expected[c]["addresses"] for c in codes) > 0
    assert result.totals["covered"] == sum(expected[c]["covered"] for c in codes) > 0


def test_suppression_rule_for_totals() -> None:
    # One suppressed cell: the total would give it back, so the total is a lower bound.
    assert core.suppress_counts([1, 10, 7, 0]) == (["< 5", 10, 7, 0], "≥ 17")
    # Two or more suppressed cells with an undetermined split: the total stays exact.
    assert core.suppress_counts([1, 3, 10]) == (["< 5", "< 5", 10], 14)
    # Suppressed cells all 1 or all 4 would be pinned down by the total.
    assert core.suppress_counts([1, 1, 10]) == (["< 5", "< 5", 10], "≥ 10")
    assert core.suppress_counts([4, 4, 10]) == (["< 5", "< 5", 10], "≥ 10")
    assert core.suppress_counts([4, 4]) == (["< 5", "< 5"], "≥ 5")
    # A small total is suppressed itself; 0 names nobody and is shown.
    assert core.suppress_counts([2, 1]) == (["< 5", "< 5"], "< 5")
    assert core.suppress_counts([0, 0, 10]) == ([0, 0, 10], 10)
    assert core.suppress_counts([5, 12]) == ([5, 12], 17)
    assert core.suppress_counts([]) == ([], 0)


def test_members_below_five_are_suppressed_in_service_and_exports(
    bierbeek: dict, engine: Engine, tmp_path: Path
) -> None:
    wijk = bierbeek["wijk"]
    actors = _actors(bierbeek["zone"])
    exact = service.coverage(engine, actors["officer"][0], zone=bierbeek["zone"])
    row = exact.areas[exact.areas["code"] == wijk].iloc[0]
    assert row["members"] == 1 and exact.totals["members"] == 1  # officers have member rights
    for role in ("analyst", "planner"):
        actor, scope = actors[role]
        result = service.coverage(engine, actor, **scope)
        assert result.suppressed
        members = dict(zip(result.areas["code"], result.areas["members"], strict=True))
        assert members.pop(wijk) == "< 5" and set(members.values()) == {0}
        per_1000 = result.areas.set_index("code")["members_per_1000"]
        assert np.isnan(per_1000[wijk]) and (per_1000.drop(wijk) == 0).all()
        assert result.totals["members"] == "< 5" and result.totals["members_per_1000"] is None
        for suffix in (".csv", ".gpkg", ".geojson"):
            path = tmp_path / f"{role}{suffix}"
            service.export_frame(result.areas, path)
            if suffix == ".csv":
                shown = pd.read_csv(path, dtype=str).set_index("code")["members"]
            else:
                shown = gpd.read_file(path).set_index("code")["members"]
            assert shown[wijk] == "< 5", (role, suffix)
            assert set(shown.drop(wijk).astype(str)) == {"0"}, (role, suffix)
    # The exact result, shared with officers, was not changed by the suppressed copies.
    assert exact.areas.loc[exact.areas["code"] == wijk, "members"].iloc[0] == 1


def test_members_suppressed_in_the_api_and_maps(
    bierbeek: dict, engine: Engine, settings: Settings
) -> None:
    zone = bierbeek["zone"]
    add_user(engine, "lvl-analyst", Role.police_analyst, police_zone_code=zone)
    add_user(engine, "lvl-officer", Role.police_officer, police_zone_code=zone)
    tokens = {name: create_token(engine, f"lvl-{name}")[1] for name in ("analyst", "officer")}

    def get(path: str, who: str):
        answer = client.get(path, headers={"Authorization": f"Bearer {tokens[who]}"})
        assert answer.status_code == 200, answer.text
        return answer

    with TestClient(create_app(settings)) as client:
        analyst = get(f"/coverage?zone={zone}", "analyst").json()
        officer = get(f"/coverage?zone={zone}", "officer").json()
        coverage_map = get(f"/maps/coverage?zone={zone}", "analyst").text
        officer_map = get(f"/maps/coverage?zone={zone}", "officer").text
    assert analyst["level"] == "wijk" and analyst["members_suppressed"] is True
    by_code = {f["properties"]["code"]: f["properties"] for f in analyst["features"]}
    assert by_code[bierbeek["wijk"]]["members"] == "< 5"
    assert by_code[bierbeek["wijk"]]["members_per_1000"] is None
    assert {p["members"] for c, p in by_code.items() if c != bierbeek["wijk"]} == {0}
    assert analyst["totals"]["members"] == "< 5"
    exact = {f["properties"]["code"]: f["properties"] for f in officer["features"]}
    assert exact[bierbeek["wijk"]]["members"] == 1 and officer["members_suppressed"] is False
    assert officer["totals"]["members"] == 1
    # The map's tooltips: "< 5" (written as \u003c or &lt; in the layer data), never 1.
    assert '"members": "1"' not in coverage_map and '"members": 1' not in coverage_map
    assert re.search(r'"members": "(\\u003c|&lt;|\\u0026lt;) 5"', coverage_map)
    assert "minder dan 5 getoond als &lt; 5" in coverage_map
    assert '"members": "1"' in officer_map and "fewer than 5" not in officer_map


def test_candidate_zone_validates_as_a_proposal(
    bierbeek: dict, engine: Engine, settings: Settings
) -> None:
    """One click from a candidate zone to the planning report of its area."""
    add_user(engine, "lvl-planner", Role.municipality_planner, nis_code="24011")
    add_user(engine, "lvl-stranger", Role.municipality_planner, nis_code="11023")
    tokens = {name: create_token(engine, f"lvl-{name}")[1] for name in ("planner", "stranger")}
    with TestClient(create_app(settings)) as client:
        auth = {"Authorization": f"Bearer {tokens['planner']}"}
        gaps = client.get("/gaps?municipality=24011", headers=auth)
        assert gaps.status_code == 200, gaps.text
        body = gaps.json()
        assert body["level"] == "wijk" and body["features"]
        first = body["features"][0]["properties"]
        report = client.post(f"/gaps/{first['id']}/validate", headers=auth)
        refused = client.post(
            f"/gaps/{first['id']}/validate",
            headers={"Authorization": f"Bearer {tokens['stranger']}"},
        )
        unknown = client.post("/gaps/24011-wijk-0000000000/validate", headers=auth)
        malformed = client.post("/gaps/not-an-id/validate", headers=auth)
    assert report.status_code == 200, report.text
    data = report.json()
    assert data["source"] == f"candidate zone {first['id']}"
    assert data["addresses_inside"] == first["addresses"]
    assert data["addresses_covered_elsewhere"] == 0  # only uncovered addresses, no overlap
    assert all(o["overlap_m2"] < 1.0 and o["addresses"] == 0 for o in data["overlaps"])
    assert first["name"].split(":")[0] in {w["name"] for w in data["wijken"]}
    assert refused.status_code == 403
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    assert malformed.status_code in (400, 422)
    # Every candidate lies in Bierbeek: none crosses the municipality border.
    zones = service.gaps(engine, ADMIN, zone=bierbeek["zone"]).zones
    assert set(zones["id"]) == {f["properties"]["id"] for f in body["features"]}
    with engine.connect() as connection:
        for row in zones.itertuples():
            outside = connection.execute(
                text(
                    "SELECT ST_Area(ST_Difference(ST_GeomFromWKB(:wkb, 31370), geom)) "
                    "FROM reference_areas WHERE level = 'municipality' AND code = '24011'"
                ),
                {"wkb": shapely.to_wkb(row.geometry)},
            ).scalar_one()
            assert row.municipality == "24011" and outside < 0.001 * row.geometry.area


def test_candidates_never_cross_a_group_and_are_sized() -> None:
    """Two small neighbours of different municipalities stay apart; of one, they merge; an
    area with too many addresses is cut in compact pieces holding exactly their points."""
    squares = np.array([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)])
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(1, 99, 100), rng.uniform(101, 199, 100)])
    y = rng.uniform(1, 99, 200)
    unit = np.repeat([0, 1], 100)
    options = {"min_addresses": 150, "max_addresses": 1500, "adjacency_m": 1.0}
    apart = core.candidate_zones(squares, ["11111", "22222"], unit, x, y, **options)
    assert sorted(c.group for c in apart) == ["11111", "22222"]
    together = core.candidate_zones(squares, ["11111", "11111"], unit, x, y, **options)
    assert len(together) == 1 and len(together[0].rows) == 200

    big = np.array([shapely.box(0, 0, 1000, 400)])
    x = rng.uniform(0, 1000, 4000)
    y = rng.uniform(0, 400, 4000)
    pieces = core.candidate_zones(big, ["11111"], np.zeros(4000, int), x, y, **options)
    assert len(pieces) == 3
    assert all(len(p.rows) <= 1500 for p in pieces)
    assert sorted(np.concatenate([p.rows for p in pieces]).tolist()) == list(range(4000))
    for piece in pieces:
        inside = shapely.intersects_xy(piece.geometry, x, y)
        assert np.flatnonzero(inside).tolist() == piece.rows.tolist()
        width = np.ptp(shapely.get_coordinates(piece.geometry)[:, 0])
        assert width < 500  # cut across the long side


def test_web_app_offers_levels_and_validates_a_candidate(
    bierbeek: dict, engine: Engine, settings: Settings
) -> None:
    """The planner's coverage view in Chromium: Bierbeek per wijk by default, the other levels
    to choose from, and one click from a candidate zone to its planning report."""
    from live_server import live_server
    from playwright.sync_api import sync_playwright

    add_user(
        engine, "lvl-web", Role.municipality_planner, nis_code="24011", password="pw-lvl-web-1"
    )
    errors: list[str] = []
    with live_server(settings, BINGEO_TILES="") as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_context(locale="nl-BE").new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/app")
        page.wait_for_selector("#login-submit")
        page.fill("#login-name", "lvl-web")
        page.fill("#login-password", "pw-lvl-web-1")
        page.click("#login-submit")
        page.wait_for_selector("button[data-view=coverage]")
        page.click("button[data-view=coverage]")
        page.wait_for_selector("#coverage-level", timeout=60_000)
        options = page.eval_on_selector_all("#coverage-level option", "o => o.map(x => x.value)")
        chosen = page.eval_on_selector("#coverage-level", "s => s.value")
        addresses = page.inner_text("#fig-addresses")
        layers = page.inner_text(".leaflet-control-layers")
        page.click(".validate-gap")
        page.wait_for_function("() => window.bingeo.lastReport !== null", timeout=60_000)
        report = page.evaluate("() => window.bingeo.lastReport")
        shown = page.inner_text("#gap-report")
        page.select_option("#coverage-level", "deelgemeente")
        page.wait_for_function(
            "() => document.querySelector('#coverage-level')?.value === 'deelgemeente'"
        )
        page.wait_for_selector(".leaflet-control-layers")
        layers_after = page.inner_text(".leaflet-control-layers")
        browser.close()
    assert errors == []
    assert options == ["wijk", "deelgemeente", "municipality", "police_zone"]
    assert chosen == "wijk" and "Dekking per wijk" in layers
    assert int(addresses.replace(".", "").replace("\u202f", "")) == _postgis_wijk_addresses(engine)
    assert report["source"].startswith("candidate zone 24011-wijk-")
    assert f"{report['addresses_inside']:,}".replace(",", ".") in shown and "adressen" in shown
    assert "Dekking per deelgemeente" in layers_after
