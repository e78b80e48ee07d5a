"""Hostile names in a real browser (headless Chromium): networks and sectors named like markup,
shown by the map pages (/maps/coverage, /networks/{id}/map) and by the web app's views (analyst
coverage, officer preview, planner, coordinator). No script of theirs may run: no dialog, no
element with an event handler, no policy violation; the names are shown as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import shapely
from db_helpers import empty_tables
from geoalchemy2.shape import to_shape
from live_server import live_server
from sqlalchemy import Engine, select
from test_web_e2e import CHROMIUM, CHROMIUM_ARGS, draw_circle

from bingeo.db.models import Network, Role
from bingeo.demo import NIS_CODE, POLICE_ZONE_CODE, generate_demo
from bingeo.geometry import storage_to_geojson
from bingeo.services.demo import run_demo
from bingeo.services.imports import import_areas, import_networks
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

HOSTILE = (
    "<img src=x onerror=alert(1)>",
    '"><script>alert(1)</script>',
    "</script><script>alert(1)</script>",
    "Sint-Jan's & Co",
)
PASSWORD = "xss test password"
NETWORKS = Network.__table__
# Before any script of the page: policy violations are kept where the test can read them.
WATCH_VIOLATIONS = (
    "window.__violations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
)
# Every tooltip of every GeoJSON layer of a Leaflet map, opened the way a mouse opens it (a
# mouseover on the feature); the texts they showed.
OPEN_TOOLTIPS = """(map) => {
  const shown = [];
  map.eachLayer((group) => {
    if (!(group instanceof L.GeoJSON)) return;
    group.eachLayer((feature) => {
      const latlng = feature.getBounds().getCenter();
      feature.fire("mouseover", { latlng, layerPoint: map.latLngToLayerPoint(latlng) }, true);
      const tooltip = feature.getTooltip() || group.getTooltip();
      if (tooltip && tooltip.getElement()) shown.push(tooltip.getElement().innerText);
      feature.fire("mouseout", {}, true);
    });
  });
  return shown;
}"""
FOLIUM_MAP = "Object.values(window).find((v) => v instanceof L.Map)"
APP_MAP = "window.bingeo.map"


@dataclass
class Place:
    """The demo municipality with hostile names; the ids and shapes the test needs."""

    coordinated: int  # the network of the coordinator, named like an <img> tag
    shapes: dict[int, dict]  # every network's area, GeoJSON
    analyst_token: str


@pytest.fixture(scope="module")
def place(engine: Engine, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Place:
    """Demodorp, its networks and sectors renamed with hostile names (imported from files, as a
    user would), and a user of each role with a password."""
    empty_tables(engine)
    folder = tmp_path_factory.mktemp("xss")
    run_demo(engine, settings, out_dir=folder / "demo")
    demo = generate_demo()
    networks = demo.networks.assign(name=_hostile(len(demo.networks))).to_crs(4326)
    networks.to_file(folder / "networks.geojson", driver="GeoJSON", engine="pyogrio")
    import_networks(engine, folder / "networks.geojson")
    sectors = demo.sectors.assign(name_nl=_hostile(len(demo.sectors)))
    sectors.to_file(folder / "sectors.gpkg", layer="sectors", driver="GPKG", engine="pyogrio")
    import_areas(engine, folder / "sectors.gpkg", "sector", layer="sectors")
    with engine.connect() as connection:
        rows = connection.execute(
            select(NETWORKS.c.id, NETWORKS.c.name, NETWORKS.c.geom).order_by(NETWORKS.c.id)
        ).all()
    shapes = {row.id: storage_to_geojson(to_shape(row.geom)) for row in rows}
    coordinated = next(row.id for row in rows if row.name == HOSTILE[0])
    users = {
        "analyst": (Role.police_analyst, {"police_zone_code": POLICE_ZONE_CODE}),
        "officer": (Role.police_officer, {"police_zone_code": POLICE_ZONE_CODE}),
        "planner": (Role.municipality_planner, {"nis_code": NIS_CODE}),
        "coordinator": (Role.coordinator, {"network_id": coordinated}),
    }
    for name, (role, scope) in users.items():
        add_user(engine, name, role, password=PASSWORD, **scope)
    return Place(coordinated, shapes, create_token(engine, "analyst")[1])


@pytest.fixture(scope="module")
def server(place: Place, settings: Settings) -> Iterator[str]:
    with live_server(settings, start_timeout_s=90, BINGEO_TILES="") as base:
        yield base


@dataclass
class Watch:
    """What went wrong in the browser: dialogs, console errors, uncaught exceptions."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def test_hostile_names_show_as_text_and_run_nothing(
    server: str, place: Place, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    watch = Watch()
    inside = shapely.geometry.shape(place.shapes[place.coordinated]).representative_point()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            # The map pages, with the analyst's token as an API client sends it.
            context = browser.new_context(
                viewport={"width": 1200, "height": 800},
                extra_http_headers={"Authorization": f"Bearer {place.analyst_token}"},
            )
            page = _watched(context, watch)
            coverage = f"{server}/maps/coverage?municipality={NIS_CODE}"
            one = f"{server}/networks/{place.coordinated}/map"
            for url in (coverage, one):
                answer = page.goto(url)
                assert answer is not None and answer.status == 200
                # folium's scripts ran (under the policy): the map holds its layers.
                page.wait_for_function(FOLIUM_MAP + " !== undefined")
                shown = _open_tooltips(page, FOLIUM_MAP)
                _assert_text(shown, HOSTILE if url == coverage else HOSTILE[:1])
                _assert_inert(page, watch)
            # A real mouse over the network of the last page: its name, as text.
            assert _hover(page, FOLIUM_MAP, inside).startswith(f"Netwerk\t{HOSTILE[0]}\n")
            context.close()

            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = _watched(context, watch)
            _login(page, server, "analyst")
            page.wait_for_selector("#fig-addresses", timeout=60_000)
            _assert_text(_open_tooltips(page, APP_MAP), HOSTILE)
            _assert_text([page.inner_text("#panel")], HOSTILE)
            _assert_inert(page, watch)

            _login(page, server, "officer")
            page.wait_for_selector(".leaflet-overlay-pane .leaflet-interactive")
            x, y = _pixel(page, APP_MAP, inside)
            draw_circle(page, x, y, 120)
            # The first preview of a server builds its read model: it may take a while.
            page.wait_for_function("() => window.bingeo.lastPreview !== null", timeout=120_000)
            page.wait_for_selector("#pv-networks")
            _assert_text([page.inner_text("#preview")], HOSTILE[:1])
            _assert_text(_open_tooltips(page, APP_MAP), HOSTILE)
            _assert_inert(page, watch)

            _login(page, server, "planner")
            page.wait_for_selector("#plan-networks li")
            _assert_text([page.inner_text("#plan-networks")], HOSTILE)
            proposal = tmp_path / "proposal.geojson"
            feature = {
                "type": "Feature",
                "properties": {},
                "geometry": place.shapes[place.coordinated],
            }
            proposal.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
            page.set_input_files("#plan-file", str(proposal))
            page.wait_for_selector("#rp-findings li[data-code=overlap]", timeout=60_000)
            _assert_text([page.inner_text("#rp-findings")], HOSTILE[:1])
            _assert_inert(page, watch)

            _login(page, server, "coordinator")
            page.wait_for_selector("#network-name", timeout=30_000)
            assert page.inner_text("#network-name") == HOSTILE[0]
            page.wait_for_selector(".leaflet-overlay-pane .leaflet-interactive")
            assert _hover(page, APP_MAP, inside).startswith(HOSTILE[0] + " (")
            _assert_inert(page, watch)
            context.close()
        finally:
            browser.close()
    assert watch.dialogs == []
    assert watch.errors == []


def _hostile(count: int) -> list[str]:
    return [HOSTILE[i % len(HOSTILE)] for i in range(count)]


def _watched(context, watch: Watch):
    """A page of ``context`` whose dialogs (dismissed), console errors and exceptions are kept."""
    context.add_init_script(WATCH_VIOLATIONS)
    page = context.new_page()
    page.on("dialog", lambda d: (watch.dialogs.append(d.message), d.dismiss()))

    def console(message) -> None:
        # The browser's own request for /favicon.ico (the map pages have none) is no fault.
        where = message.location.get("url", "")
        if message.type == "error" and not where.endswith("/favicon.ico"):
            watch.errors.append(f"{message.text} {where}")

    page.on("console", console)
    page.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))
    return page


def _login(page, server: str, name: str) -> None:
    if page.is_visible("#logout"):
        page.click("#logout")
    if not page.url.startswith(f"{server}/app"):
        page.goto(f"{server}/app")
    page.wait_for_selector("#login-submit")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_function(
        f"() => document.querySelector('#whoami').textContent.startsWith('{name}')"
    )


def _open_tooltips(page, map_expression: str) -> list[str]:
    return page.evaluate(f"() => ({OPEN_TOOLTIPS})({map_expression})")


def _pixel(page, map_expression: str, point) -> tuple[float, float]:
    box = page.locator(".leaflet-container").first.bounding_box()
    spot = page.evaluate(
        f"([lat, lon]) => {map_expression}.latLngToContainerPoint([lat, lon])", [point.y, point.x]
    )
    return box["x"] + spot["x"], box["y"] + spot["y"]


def _hover(page, map_expression: str, point) -> str:
    """The tooltip the mouse opens at ``point`` (lon/lat)."""
    # A closed tooltip fades out for a moment; the one to read is the next.
    page.wait_for_selector(".leaflet-tooltip", state="detached")
    page.mouse.move(*_pixel(page, map_expression, point))
    page.wait_for_selector(".leaflet-tooltip")
    return page.inner_text(".leaflet-tooltip")


def _assert_text(shown: list[str], names: tuple[str, ...]) -> None:
    """Each hostile name appears, as the text itself, in what the page shows."""
    joined = "\n".join(shown)
    for name in names:
        assert name in joined, (name, shown[:5])


def _assert_inert(page, watch: Watch) -> None:
    """Nothing of the names became markup or ran; bingeo's own scripts broke no policy."""
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
    assert page.evaluate("() => window.__violations") == []
    assert page.evaluate("() => document.querySelector('[onerror], img[src=x]') === null")
