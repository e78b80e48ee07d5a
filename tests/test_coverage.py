"""Coverage, overlaps and gaps on real Gent data, checked figure for figure against PostGIS SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import shapely
from db_helpers import empty_tables
from live_server import live_server
from shapely.geometry import MultiPolygon
from sqlalchemy import Engine, text

from bingeo import coverage as core
from bingeo.access import Actor, Principal
from bingeo.db.models import NetworkKind, NetworkStatus, Role
from bingeo.errors import Forbidden, NotAuthenticated
from bingeo.members import MemberInput
from bingeo.services import coverage as service
from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.members import register_member
from bingeo.services.networks import create_network
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ADMIN = Actor(principal=Principal(user_id=None, name="test", role=Role.admin))
MIN_OVERLAP_M2 = 1.0
GAP_SHARE = 0.1
ADJACENCY_M = 1.0
CONTEXT_LAYERS = {
    "wijken": "wijk",
    "deelgemeenten": "deelgemeente",
    "municipality": "municipality",
    "police_zone": "police_zone",
}


@pytest.fixture(scope="module")
def gent(engine: Engine, real_data: Path) -> dict[str, int]:
    """Gent sectors, context layers and addresses, and a set of test networks (name -> id)."""
    empty_tables(engine)
    folder = real_data / "gent"
    import_areas(engine, folder / "gent_statistical_sectors.geojson", "sector")
    for layer, level in CONTEXT_LAYERS.items():
        import_areas(engine, folder / "gent_context.gpkg", level, layer=layer)
    import_addresses(engine, folder / "gent_addresses_crab2014.csv")
    return _make_networks(engine)


def _sectors(engine: Engine, codes: list[str]) -> MultiPolygon:
    with engine.connect() as connection:
        wkb = connection.execute(
            text(
                "SELECT ST_AsBinary(ST_Multi(ST_Union(geom))) FROM reference_areas "
                "WHERE level = 'sector' AND code = ANY(:codes)"
            ),
            {"codes": codes},
        ).scalar_one()
    return _multi(shapely.from_wkb(bytes(wkb)))


def _multi(geometry) -> MultiPolygon:
    return geometry if geometry.geom_type == "MultiPolygon" else MultiPolygon([geometry])


def _make_networks(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        busiest = [
            r[0]
            for r in connection.execute(
                text(
                    "SELECT s.code FROM reference_areas s JOIN addresses a "
                    "ON ST_Covers(s.geom, a.geom) WHERE s.level = 'sector' "
                    "GROUP BY s.code ORDER BY count(*) DESC, s.code LIMIT 12"
                )
            )
        ]
        # A neighbour of the busiest sector: two networks made of them only touch.
        neighbour = connection.execute(
            text(
                "SELECT b.code FROM reference_areas a JOIN reference_areas b "
                "ON ST_Touches(a.geom, b.geom) AND a.level = b.level WHERE a.level = 'sector' "
                "AND a.code = :code AND b.code <> ALL(:others) ORDER BY b.code LIMIT 1"
            ),
            {"code": busiest[0], "others": busiest[:4]},
        ).scalar_one()
        border = connection.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Boundary(geom)) p "
                "FROM reference_areas WHERE level = 'municipality') b"
            )
        ).one()
    x0, y0 = 104_000.0, 194_000.0  # near the centre of Gent, addresses all around
    specs = {
        # overlap (shared sector busiest[1])
        "A": (NetworkKind.BIN, NetworkStatus.active, _sectors(engine, busiest[0:2])),
        "B": (NetworkKind.BIN, NetworkStatus.active, _sectors(engine, busiest[1:3])),
        # only touches A
        "C": (NetworkKind.BIN_Z, NetworkStatus.active, _sectors(engine, [neighbour])),
        # not active: counts only when asked
        "D": (NetworkKind.BIN, NetworkStatus.preparation, _sectors(engine, busiest[2:4])),
        # boxes: E and F touch along x0 + 600; G overlaps F by a 0.5 m² sliver
        "E": (NetworkKind.BIN, NetworkStatus.active, _box(x0, y0, x0 + 600, y0 + 600)),
        "F": (NetworkKind.BIN_Z, NetworkStatus.active, _box(x0 + 600, y0, x0 + 1200, y0 + 600)),
        "G": (
            NetworkKind.BIN,
            NetworkStatus.active,
            _box(x0 + 600, y0 + 600 - 0.001, x0 + 1100, y0 + 1100),
        ),
        # crosses the municipality border
        "H": (
            NetworkKind.BIN,
            NetworkStatus.active,
            _box(border[0] - 400, border[1] - 400, border[0] + 400, border[1] + 400),
        ),
        # BIN-Z over A and E: overlaps both
        "I": (
            NetworkKind.BIN_Z,
            NetworkStatus.active,
            _box(x0 - 300, y0 - 300, x0 + 300, y0 + 300),
        ),
    }
    ids = {}
    for name, (kind, status, geometry) in specs.items():
        record = create_network(
            engine, ADMIN, name=f"Test {name}", kind=kind, status=status, geometry=geometry
        )
        ids[name] = record.id
    # A few members of A at its addresses, for members per 1,000 addresses.
    with engine.connect() as connection:
        addresses = [
            r[0]
            for r in connection.execute(
                text("SELECT address_id FROM address_networks WHERE network_id = :n LIMIT 5"),
                {"n": ids["A"]},
            )
        ]
    consent = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    for i, address_id in enumerate(addresses):
        register_member(
            engine,
            ADMIN,
            ids["A"],
            address_id=address_id,
            member=MemberInput(
                name=f"Member {i}",
                language="nl",
                channels=("email",),
                consent_at=consent,
                email=f"m{i}@example.org",
            ),
        )
    return ids


def _box(minx: float, miny: float, maxx: float, maxy: float) -> MultiPolygon:
    return MultiPolygon([shapely.box(minx, miny, maxx, maxy)])


# independent PostGIS computations ---------------------------------------------------------------

AREA_OF_ADDRESS = """
    SELECT DISTINCT ON (a.id) a.id AS address_id, r.id AS area_id,
           a.position_method IS NOT NULL AS approximate
    FROM addresses a JOIN reference_areas r ON r.level = :level AND ST_Covers(r.geom, a.geom)
    ORDER BY a.id, r.id
"""
COUNTED = "(n.status = 'active' OR :inactive)"


def postgis_coverage(engine: Engine, level: str, inactive: bool = False) -> dict[str, dict]:
    """Figures per area straight from the geometries (no stored matches)."""
    query = f"""
        WITH aa AS ({AREA_OF_ADDRESS}),
        hits AS (
            SELECT a.id AS address_id, n.id AS network_id, n.kind::text AS kind
            FROM addresses a JOIN networks n ON ST_Covers(n.geom, a.geom) WHERE {COUNTED}
        ),
        per_address AS (
            SELECT address_id, bool_or(kind = 'BIN') AS bin, bool_or(kind = 'BIN-Z') AS bin_z
            FROM hits GROUP BY address_id
        ),
        network_area AS (
            SELECT h.network_id, aa.area_id, count(*) AS n FROM hits h JOIN aa USING (address_id)
            GROUP BY 1, 2
        ),
        spread AS (SELECT area_id, count(*) AS networks FROM network_area GROUP BY 1),
        -- Members of counted networks, in the area holding their address.
        area_members AS (
            SELECT aa.area_id, count(*) AS n
            FROM members m JOIN networks n ON n.id = m.network_id JOIN aa USING (address_id)
            WHERE {COUNTED} GROUP BY 1
        )
        SELECT r.code, count(aa.address_id) AS addresses, count(p.address_id) AS covered,
               count(*) FILTER (WHERE p.bin) AS covered_bin,
               count(*) FILTER (WHERE p.bin_z) AS covered_bin_z,
               coalesce(max(s.networks), 0) AS networks, coalesce(max(am.n), 0) AS members,
               count(*) FILTER (WHERE aa.approximate) AS addresses_approximate,
               count(p.address_id) FILTER (WHERE aa.approximate) AS covered_approximate
        FROM reference_areas r
        LEFT JOIN aa ON aa.area_id = r.id
        LEFT JOIN per_address p USING (address_id)
        LEFT JOIN spread s ON s.area_id = r.id
        LEFT JOIN area_members am ON am.area_id = r.id
        WHERE r.level = :level GROUP BY r.code
    """
    with engine.connect() as connection:
        # Planned on the statistics of what the fixtures just stored (without them the spatial
        # join can loop over every address, a different polygon each time: minutes), for its
        # level every time (psycopg prepares a statement run five times).
        connection.execute(text("ANALYZE addresses, reference_areas, networks, members"))
        connection.execute(text("SET plan_cache_mode = force_custom_plan"))
        rows = connection.execute(text(query), {"level": level, "inactive": inactive})
        return {r.code: dict(r._mapping) for r in rows}


def postgis_overlaps(engine: Engine, inactive: bool = False) -> dict[tuple[str, str], dict]:
    query = f"""
        SELECT a.code AS code_a, b.code AS code_b,
               ST_Area(ST_Intersection(a.geom, b.geom)) AS overlap_m2,
               ST_Perimeter(ST_Intersection(a.geom, b.geom)) AS perimeter_m,
               ST_Area(ST_Intersection(a.geom, b.geom)) / ST_Area(a.geom) AS share_a,
               ST_Area(ST_Intersection(a.geom, b.geom)) / ST_Area(b.geom) AS share_b,
               (SELECT count(*) FROM addresses x
                WHERE ST_Covers(a.geom, x.geom) AND ST_Covers(b.geom, x.geom)) AS shared
        FROM networks a JOIN networks b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)
        WHERE {COUNTED.replace("n.", "a.")} AND {COUNTED.replace("n.", "b.")}
    """
    # Overlapping: sharing at least the minimum area or an address (touching otherwise).
    with engine.connect() as connection:
        rows = connection.execute(text(query), {"inactive": inactive, "min": MIN_OVERLAP_M2})
        return {
            (r.code_a, r.code_b): dict(r._mapping)
            for r in rows
            if (r.overlap_m2 >= MIN_OVERLAP_M2 and 2 * r.overlap_m2 >= 0.5 * r.perimeter_m)
            or r.shared > 0
        }


# tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inactive", [False, True])
def test_coverage_per_sector_equals_postgis(gent: dict[str, int], engine: Engine, inactive) -> None:
    result = service.coverage(engine, ADMIN, level="sector", include_inactive=inactive)
    expected = postgis_coverage(engine, "sector", inactive)
    assert len(result.areas) == len(expected) == 254
    for row in result.areas.itertuples():
        want = expected[row.code]
        got = (row.addresses, row.covered, row.covered_bin, row.covered_bin_z, row.networks)
        assert got == (
            want["addresses"],
            want["covered"],
            want["covered_bin"],
            want["covered_bin_z"],
            want["networks"],
        ), row.code
        assert row.members == want["members"], row.code
        approximate = (row.addresses_approximate, row.covered_approximate)
        assert approximate == (want["addresses_approximate"], want["covered_approximate"])
    assert result.totals["addresses"] == sum(f["addresses"] for f in expected.values())
    # Gent's 36,874 records without a position are all placed, and counted apart.
    assert result.totals["addresses_approximate"] == sum(
        f["addresses_approximate"] for f in expected.values()
    )
    assert 36_000 < result.totals["addresses_approximate"] <= 36_874
    assert result.totals["covered_approximate"] > 0
    assert result.totals["covered"] == sum(f["covered"] for f in expected.values())
    # Members are counted where their address lies, exactly (five members of A).
    assert result.totals["members"] == sum(f["members"] for f in expected.values()) == 5
    assert result.totals["members_per_1000"] == 5000 / result.totals["addresses"]
    # The inactive network D changes the figures only when asked.
    assert sum(f["covered"] for f in expected.values()) > 0


@pytest.mark.parametrize("level", ["wijk", "deelgemeente", "municipality", "police_zone"])
def test_coverage_per_level_and_scope_equals_postgis(
    gent: dict[str, int], engine: Engine, level: str
) -> None:
    with engine.connect() as connection:
        zone = connection.execute(
            text("SELECT code FROM reference_areas WHERE level = 'police_zone'")
        ).scalar_one()
    expected = postgis_coverage(engine, level)
    for scope in ({"zone": zone}, {"municipality": "44021"}, {}):
        result = service.coverage(engine, ADMIN, level=level, **scope)
        got = {
            r.code: (r.addresses, r.covered, r.networks, r.members)
            for r in result.areas.itertuples()
        }
        assert got == {
            code: (f["addresses"], f["covered"], f["networks"], f["members"])
            for code, f in expected.items()
        }


def test_overlaps_equal_postgis(gent: dict[str, int], engine: Engine) -> None:
    for inactive in (False, True):
        result = service.overlaps(
            engine, ADMIN, include_inactive=inactive, min_overlap_m2=MIN_OVERLAP_M2
        )
        expected = postgis_overlaps(engine, inactive)
        got = {(r.code_a, r.code_b): r for r in result.pairs.itertuples()}
        assert set(got) == set(expected)
        for key, want in expected.items():
            assert got[key].overlap_m2 == pytest.approx(want["overlap_m2"], rel=1e-9)
            assert got[key].share_a == pytest.approx(want["share_a"], rel=1e-9)
            assert got[key].share_b == pytest.approx(want["share_b"], rel=1e-9)
            assert got[key].shared_addresses == want["shared"]
    codes = _codes(engine, gent)
    names = {frozenset((r.code_a, r.code_b)) for r in result.pairs.itertuples()}
    assert frozenset((codes["A"], codes["B"])) in names  # overlapping
    assert frozenset((codes["A"], codes["C"])) not in names  # touching only
    assert frozenset((codes["E"], codes["F"])) not in names  # touching only
    assert frozenset((codes["F"], codes["G"])) not in names  # sliver below the minimum
    assert frozenset((codes["A"], codes["I"])) in names or frozenset((codes["E"], codes["I"]))


def test_border_crossing(gent: dict[str, int], engine: Engine) -> None:
    result = service.overlaps(engine, ADMIN, min_overlap_m2=MIN_OVERLAP_M2)
    query = """
        SELECT n.code FROM networks n WHERE n.status = 'active' AND ST_Area(ST_Difference(n.geom,
            (SELECT ST_Union(geom) FROM reference_areas WHERE level = 'municipality'))) > :min
    """
    with engine.connect() as connection:
        expected = {r[0] for r in connection.execute(text(query), {"min": MIN_OVERLAP_M2})}
    assert set(result.crossings["code"]) == expected == {_codes(engine, gent)["H"]}
    assert (result.crossings["outside_municipalities_m2"] > 1000).all()


def postgis_candidate_counts(engine: Engine, wkb: bytes) -> tuple[int, int, set[str]]:
    """(addresses, uncovered addresses, municipalities holding them) of an area, from PostGIS:
    uncovered = covered by no active network."""
    query = """
        SELECT count(*) AS addresses,
               count(*) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM networks n WHERE n.status = 'active'
                   AND ST_Covers(n.geom, a.geom))) AS uncovered,
               array_remove(array_agg(DISTINCT m.code), NULL) AS municipalities
        FROM addresses a
        LEFT JOIN reference_areas m ON m.level = 'municipality' AND ST_Covers(m.geom, a.geom)
        WHERE ST_Covers(ST_GeomFromWKB(:wkb, 31370), a.geom)
    """
    with engine.connect() as connection:
        row = connection.execute(text(query), {"wkb": wkb}).one()
    return row.addresses, row.uncovered, set(row.municipalities)


def test_gaps_are_candidate_networks(gent: dict[str, int], engine: Engine) -> None:
    """Candidate zones on Gent: at most 1,500 addresses, one municipality each, disjoint, each
    holding exactly the addresses it claims (PostGIS), named by wijk and streets, ranked."""
    result = service.gaps(
        engine,
        ADMIN,
        municipality="44021",
        max_covered_share=GAP_SHARE,
        adjacency_m=ADJACENCY_M,
        min_addresses=150,
        max_addresses=1500,
    )
    assert result.level.value == "sector"  # the finest level of Gent
    figures = postgis_coverage(engine, "sector")
    ranked = sorted(
        (
            (f["addresses"] - f["covered"], f["addresses"], code)
            for code, f in figures.items()
            if f["addresses"] > 0 and f["covered"] / f["addresses"] <= GAP_SHARE
        ),
        reverse=True,
    )
    assert [(r.uncovered, r.addresses) for r in result.areas.itertuples()] == [
        (u, a) for u, a, _ in ranked
    ]
    zones = result.zones
    assert len(zones) > 40  # not one zone of the whole city
    assert zones["addresses"].max() <= 1500
    assert (zones["municipality"] == "44021").all()
    # Every uncovered address of Gent is in exactly one candidate, and nothing else is.
    assert (zones["addresses"] == zones["uncovered"]).all()
    assert zones["uncovered"].sum() == sum(f["addresses"] - f["covered"] for f in figures.values())
    for row in zones.itertuples():
        addresses, uncovered, municipalities = postgis_candidate_counts(
            engine, shapely.to_wkb(row.geometry)
        )
        assert (addresses, uncovered) == (row.addresses, row.uncovered), row.id
        assert municipalities == {"44021"}, row.id
    with engine.connect() as connection:
        shared = connection.execute(
            text(
                "SELECT max(ST_Area(ST_Intersection(n.geom, ST_GeomFromWKB(c.wkb, 31370)))) "
                "FROM networks n, unnest(CAST(:wkbs AS bytea[])) AS c(wkb) "
                "WHERE n.status = 'active'"
            ),
            {"wkbs": [shapely.to_wkb(g) for g in zones.geometry.values]},
        ).scalar_one()
    assert shared < 1.0  # candidates leave the active networks out
    union = shapely.union_all(zones.geometry.values)
    assert union.area == pytest.approx(zones.geometry.area.sum(), rel=1e-4)  # no overlap
    assert postgis_candidate_counts(engine, shapely.to_wkb(union))[0] == zones["addresses"].sum()
    with engine.connect() as connection:
        wijken = set(
            connection.execute(
                text("SELECT name_nl FROM reference_areas WHERE level = 'wijk'")
            ).scalars()
        )
    for row in zones.itertuples():
        assert row.wijk in wijken and row.name.startswith(f"{row.wijk}: "), row.name
        assert 1 <= len(row.streets.split(", ")) <= 3
    # Most candidates are the size of a real network; the rest could not be merged.
    sized = zones[zones["addresses"] >= 150]
    assert len(sized) >= 0.6 * len(zones)
    assert (zones["small"] == (zones["addresses"] < 150)).all()
    order = list(zip(-zones["uncovered"], -zones["distance_m"].fillna(np.inf), strict=True))
    assert order == sorted(order)
    assert list(zones["rank"]) == list(range(1, len(zones) + 1))
    # Ids are stable: the same data gives the same candidates.
    again = service.gaps(engine, ADMIN, zone="ipz93", max_covered_share=GAP_SHARE)
    assert set(again.zones["id"]) == set(zones["id"])


def test_access_rules(gent: dict[str, int], engine: Engine) -> None:
    anonymous = Actor()
    with pytest.raises(NotAuthenticated):
        service.coverage(engine, anonymous, municipality="44021")
    other = Actor(
        principal=Principal(
            user_id=1, name="x", role=Role.police_analyst, police_zone_code="elsewhere"
        )
    )
    with pytest.raises(Forbidden):
        service.overlaps(engine, other, municipality="44021")
    planner = Actor(
        principal=Principal(user_id=2, name="p", role=Role.municipality_planner, nis_code="44021")
    )
    assert service.coverage(engine, planner, municipality="44021").totals["addresses"] > 90_000
    with pytest.raises(Forbidden):
        service.coverage(engine, planner)  # the whole country: admins only


def test_map_is_small_and_offline(gent: dict[str, int], engine: Engine, settings: Settings) -> None:
    fmap = service.coverage_map(
        engine, ADMIN, settings, municipality="44021", include_inactive=True
    )
    page = fmap.get_root().render()
    assert len(page) < 5_000_000
    assert "cdn." not in page and "https://code.jquery" not in page
    for name in ("Aandeel gedekt per sector", "Overlappingen", "Niet-gedekte buurten", "BIN-Z"):
        assert name in page


def _codes(engine: Engine, ids: dict[str, int]) -> dict[str, str]:
    with engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT id, code FROM networks")).all())
    return {name: rows[i] for name, i in ids.items()}


@pytest.fixture(scope="module")
def server(gent: dict[str, int], settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on a free local port (no base-map tiles); its base URL."""
    with live_server(settings, BINGEO_TILES="") as base:
        yield base


@pytest.fixture(scope="module")
def tokens(gent: dict[str, int], engine: Engine) -> dict[str, str]:
    """Bearer tokens of an analyst of PZ Gent, an analyst of another zone and a Gent planner."""
    add_user(engine, "cov-analyst", Role.police_analyst, police_zone_code="ipz93")
    add_user(engine, "cov-other", Role.police_analyst, police_zone_code="ipz1")
    add_user(engine, "cov-planner", Role.municipality_planner, nis_code="44021")
    return {
        name: create_token(engine, f"cov-{name}")[1] for name in ("analyst", "other", "planner")
    }


def test_api_geojson_and_access(server: str, tokens: dict[str, str], engine: Engine) -> None:
    def get(path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"{server}{path}", headers=headers, timeout=120)

    assert get("/coverage?zone=ipz93").status_code == 401
    assert get("/coverage?zone=ipz93", tokens["other"]).status_code == 403
    assert get("/gaps?zone=ipz93", tokens["planner"]).status_code == 403  # a zone: police only
    answer = get("/coverage?zone=ipz93&level=wijk", tokens["analyst"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/geo+json")
    body = answer.json()
    expected = postgis_coverage(engine, "wijk")
    got = {f["properties"]["code"]: f["properties"]["covered"] for f in body["features"]}
    assert got == {code: f["covered"] for code, f in expected.items()}
    lon, lat = body["features"][0]["geometry"]["coordinates"][0][0][0][:2]
    assert 3.5 < lon < 3.9 and 50.9 < lat < 51.2  # EPSG:4326
    overlaps = get("/overlaps?municipality=44021", tokens["planner"]).json()
    assert len(overlaps["features"]) == len(postgis_overlaps(engine))
    assert len(overlaps["crossings"]["features"]) == 1
    gaps = get("/gaps?municipality=44021", tokens["planner"]).json()
    assert gaps["features"][0]["properties"]["rank"] == 1
    # Aggregates only: nothing about members beyond counts.
    assert "email" not in str(body) and "Member 0" not in str(body)


def test_api_coverage_follows_changes(
    server: str, tokens: dict[str, str], gent: dict[str, int], engine: Engine
) -> None:
    """A scope's coverage document is kept while nothing changes: a new network, a new member
    and their removal show in the very next answer of the server."""
    from bingeo.services.members import remove_member
    from bingeo.services.networks import delete_network

    def coverage() -> dict:
        answer = httpx.get(
            f"{server}/coverage?zone=ipz93&level=wijk",
            headers={"Authorization": f"Bearer {tokens['analyst']}"},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def covered(body: dict) -> dict[str, int]:
        return {f["properties"]["code"]: f["properties"]["covered"] for f in body["features"]}

    before = coverage()
    assert coverage() == before
    added = _late_network(engine)
    member = None
    try:
        after = coverage()
        assert covered(after) == {
            c: f["covered"] for c, f in postgis_coverage(engine, "wijk").items()
        }
        assert after["totals"]["covered"] > before["totals"]["covered"]
        with engine.connect() as connection:
            address = connection.execute(
                text("SELECT min(address_id) FROM address_networks WHERE network_id = :n"),
                {"n": added.id},
            ).scalar_one()
        member = register_member(
            engine,
            ADMIN,
            added.id,
            address_id=address,
            member=MemberInput(
                name="Late member",
                language="nl",
                channels=("email",),
                consent_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                email="late@example.org",
            ),
        )
        # The analyst sees members as suppressed below 5: the answer follows the exact counts.
        exact = service.coverage(engine, ADMIN, zone="ipz93", level="wijk").areas["members"]
        assert int(exact.sum()) == 6  # five of A and the late one
        assert coverage()["totals"]["members"] == core.suppress_counts(exact.to_numpy())[1]
        assert coverage() != after
    finally:
        if member is not None:
            remove_member(engine, ADMIN, added.id, member)
        delete_network(engine, ADMIN, added.id, version=added.version)
    assert coverage() == before


def test_map_opens_in_chromium_without_errors(server: str, tokens: dict[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        context = browser.new_context(
            extra_http_headers={"Authorization": f"Bearer {tokens['analyst']}"}
        )
        page = context.new_page()
        # The browser asks for /favicon.ico on its own; the map asks for nothing missing.
        page.on(
            "console",
            lambda m: (
                errors.append(f"{m.text} {m.location.get('url')}")
                if m.type == "error" and not str(m.location.get("url", "")).endswith("/favicon.ico")
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
        page.on(
            "request",
            lambda r: outside.append(r.url) if not r.url.startswith(server) else None,
        )
        response = page.goto(f"{server}/maps/coverage?zone=ipz93&include_inactive=true")
        assert response is not None and response.status == 200
        page.wait_for_selector(".leaflet-control-layers", timeout=30_000)
        layers = page.inner_text(".leaflet-control-layers")
        # Drawn on a canvas: count the map's vector layers through Leaflet itself.
        paths = page.evaluate(
            """() => {
                const map = Object.values(window).find((v) => v instanceof L.Map);
                let n = 0;
                map.eachLayer((layer) => { if (layer instanceof L.Path) n += 1; });
                return n;
            }"""
        )
        legend = page.inner_text("#bingeo-legend")
        browser.close()
    assert errors == []
    assert outside == []  # everything served by bingeo itself
    for name in (
        "Aandeel gedekt per sector",
        "BIN (bewoners)",
        "BIN-Z (zelfstandigen)",
        "Overlappingen",
        "Niet-gedekte buurten",
    ):
        assert name in layers
    assert paths > 254
    assert "% gedekt" in legend


def test_notebook_runs_against_the_test_database(
    gent: dict[str, int], settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("BINGEO_DATABASE_NAME", settings.database_name)
    monkeypatch.setenv("BINGEO_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("BINGEO_ZONE", "ipz93")
    monkeypatch.setenv("BINGEO_OUT_DIR", str(tmp_path))
    notebook = nbformat.read(ROOT / "notebooks" / "coverage.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert "candidate zones" in outputs
    assert 'shown as "< 5": True' in outputs  # the notebook's analyst has no member rights
    assert "police zone ipz93 per sector" in outputs  # the finest level of Gent by default
    assert (tmp_path / "coverage_ipz93.html").exists()


def test_figures_follow_network_changes(gent: dict[str, int], engine: Engine) -> None:
    """The in-process read model is reloaded when a network is added or removed."""
    from bingeo.services.networks import delete_network

    before = service.coverage(engine, ADMIN, level="wijk")
    added = _late_network(engine)
    try:
        after = service.coverage(engine, ADMIN, level="wijk")
        expected = postgis_coverage(engine, "wijk")
        assert {r.code: r.covered for r in after.areas.itertuples()} == {
            code: f["covered"] for code, f in expected.items()
        }
        assert after.totals["covered"] > before.totals["covered"]
    finally:
        delete_network(engine, ADMIN, added.id, version=added.version)
    again = service.coverage(engine, ADMIN, level="wijk")
    assert again.totals == before.totals


def _stored_areas(engine: Engine, level: str) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT address_id, area_id FROM address_areas WHERE level = :level"),
            {"level": level},
        )
        return dict(rows.all())


def _postgis_areas(engine: Engine, level: str) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(text(AREA_OF_ADDRESS), {"level": level}).all()
        return {address_id: area_id for address_id, area_id, _ in rows}


def test_address_areas_follow_every_import(db: Engine, real_data: Path, tmp_path: Path) -> None:
    """Imports of addresses (new and moved) and of areas keep ``address_areas`` current,
    without any coverage call in between (no lazy refresh hides a stale table)."""
    folder = real_data / "gent"
    header = "id,street,housenumber,postcode,municipality,nis_code,lat,lon\n"
    here, there = "51.0502693,3.7340354", "51.0386682,3.7100412"
    first = tmp_path / "first.csv"
    first.write_text(
        header
        + f"a1,'t Stuk,2,9000,Gent,44021,{here}\n"
        + f"a2,Aaigemstraat,1,9000,Gent,44021,{there}\n"
        + "a3,Far away,1,9000,Gent,44021,50.8,4.4\n"  # in Belgium, in no Gent sector
    )
    import_areas(db, folder / "gent_statistical_sectors.geojson", "sector")
    import_addresses(db, first)
    before = _stored_areas(db, "sector")
    assert before == _postgis_areas(db, "sector")
    assert len(before) == 2 and len(set(before.values())) == 2

    # The first address moves to the second one's sector; a new address is added.
    second = tmp_path / "second.csv"
    second.write_text(
        header
        + f"a1,'t Stuk,2,9000,Gent,44021,{there}\n"
        + f"a2,Aaigemstraat,1,9000,Gent,44021,{there}\n"
        + f"a4,'t Stuk,4,9000,Gent,44021,{here}\n"
    )
    summary = import_addresses(db, second)
    assert (summary.stored, summary.updated) == (1, 1)
    after = _stored_areas(db, "sector")
    assert after == _postgis_areas(db, "sector")
    assert len(after) == 3 and len(set(after.values())) == 2
    with db.connect() as connection:
        moved = connection.execute(
            text("SELECT id FROM addresses WHERE street = '''t Stuk' AND house_number = '2'")
        ).scalar_one()
    assert after[moved] != before[moved]

    # Areas of another level, imported after the addresses.
    import_areas(db, folder / "gent_context.gpkg", "wijk", layer="wijken")
    wijken = _stored_areas(db, "wijk")
    assert wijken == _postgis_areas(db, "wijk") and len(wijken) == 3


def _late_network(engine: Engine):
    """An active BIN added after the module's data, in the west of Gent."""
    return create_network(
        engine,
        ADMIN,
        name="Test late",
        kind=NetworkKind.BIN,
        status=NetworkStatus.active,
        geometry=_box(103_000.0, 196_000.0, 103_800.0, 196_800.0),
    )
