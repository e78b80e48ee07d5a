"""The web app end to end in headless Chromium: the real app under uvicorn, the dispatcher as
``bingeo worker``, a loopback SMTP server, Gent's real sectors and addresses.

Every page is checked for JavaScript console errors, and every request that would leave
127.0.0.1 is blocked and recorded (there must be none). Screenshots go to out/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import geopandas as gpd
import httpx
import pytest
import shapely
from aiosmtpd.controller import Controller
from db_helpers import empty_tables
from live_server import free_port, live_server, wait_until
from shapely.geometry import MultiPolygon
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from bingeo import cli
from bingeo.access import Actor, Principal
from bingeo.db.models import (
    Address,
    AddressNetwork,
    AreaLevel,
    NetworkContact,
    NetworkKind,
    NetworkStatus,
    ReferenceArea,
    Role,
)
from bingeo.geometry import STORAGE_EPSG, storage_to_geojson
from bingeo.maps import network_map, save_map
from bingeo.members import MemberInput
from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.members import register_member
from bingeo.services.networks import create_network
from bingeo.services.users import add_user
from bingeo.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "out" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN = Actor(principal=Principal(user_id=None, name="setup", role=Role.admin))
PASSWORD = "web test password"
CONTEXT_LAYERS = {
    "wijken": "wijk",
    "deelgemeenten": "deelgemeente",
    "municipality": "municipality",
    "police_zone": "police_zone",
}
SECTORS = ReferenceArea.__table__
ADDRESSES = Address.__table__
PAIRS = AddressNetwork.__table__
CONTACTS = NetworkContact.__table__


# the world: Gent, networks, people ---------------------------------------------------------------


@dataclass
class Town:
    """What the fixture made: network ids, coordinator e-mails, zone and municipality codes."""

    networks: dict[str, int]
    shapes: dict[str, MultiPolygon]
    coordinators: dict[int, str]
    zone: str
    nis_code: str
    proposal: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def town(engine: Engine, real_data: Path) -> Town:
    """Gent's sectors, context layers and CRAB addresses; three networks (two overlapping, one
    BIN-Z), members, a coordinator each, and users of every role with passwords."""
    empty_tables(engine)
    folder = real_data / "gent"
    import_areas(engine, folder / "gent_statistical_sectors.geojson", AreaLevel.sector)
    for layer, level in CONTEXT_LAYERS.items():
        import_areas(engine, folder / "gent_context.gpkg", level, layer=layer)
    import_addresses(engine, folder / "gent_addresses_crab2014.csv")
    codes = _busiest_sectors(engine, 8)
    specs = {
        "Kouter": (NetworkKind.BIN, codes[0:3]),
        "Zuid": (NetworkKind.BIN, codes[2:5]),
        "Handel": (NetworkKind.BIN_Z, codes[5:7]),
    }
    networks, shapes = {}, {}
    for name, (kind, sector_codes) in specs.items():
        shape = _sectors(engine, sector_codes)
        record = create_network(
            engine, ADMIN, name=name, kind=kind, geometry=shape, status=NetworkStatus.active
        )
        networks[name], shapes[name] = record.id, shape
    zone, nis_code = record.police_zone_code, record.nis_code
    assert zone and nis_code
    with engine.connect() as connection:
        pairs = connection.execute(
            select(PAIRS.c.network_id, PAIRS.c.address_id)
            .where(PAIRS.c.address_id % 25 == 0)
            .order_by(PAIRS.c.network_id, PAIRS.c.address_id)
        ).all()
    channels = (("email",), ("sms",), ("email", "voice"))
    for i, (network_id, address_id) in enumerate(pairs):
        register_member(
            engine, ADMIN, network_id, address_id=address_id,
            member=MemberInput(
                name=f"Lid {i}", language=("nl", "fr")[i % 2], channels=channels[i % 3],
                consent_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                email=f"lid{i}@example.be", phone=f"+3247200{i:04d}",
            ),
        )  # fmt: skip
    coordinators = {}
    with engine.begin() as connection:
        for name, network_id in networks.items():
            coordinators[network_id] = f"coord-{name.lower()}@example.be"
            connection.execute(
                insert(CONTACTS).values(
                    network_id=network_id, role="coordinator", name=f"Coördinator {name}",
                    email=coordinators[network_id], language="nl",
                )
            )  # fmt: skip
    users = {
        "analyst": (Role.police_analyst, {"police_zone_code": zone}),
        "officer": (Role.police_officer, {"police_zone_code": zone}),
        "planner": (Role.municipality_planner, {"nis_code": nis_code}),
        "coordinator": (Role.coordinator, {"network_id": networks["Kouter"]}),
    }
    for name, (role, scope) in users.items():
        add_user(engine, name, role, password=PASSWORD, **scope)
    # A planner's proposal: the last sector of Zuid and a free sector beside it.
    proposal = _sectors(engine, [codes[4], _neighbour(engine, codes[4], codes)])
    return Town(networks, shapes, coordinators, zone, nis_code, storage_to_geojson(proposal))


# servers: SMTP, the app, the dispatcher ------------------------------------------------------


class Inbox:
    """A loopback SMTP server's handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK queued"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def server(town: Town, inbox: Inbox, settings: Settings) -> Iterator[str]:
    """The app under uvicorn and ``bingeo worker`` on the test database; the app's base URL."""
    with live_server(
        settings,
        worker=True,
        start_timeout_s=90,
        BINGEO_TILES="",
        BINGEO_SMTP_HOST="127.0.0.1",
        BINGEO_SMTP_PORT=str(inbox.port),
        BINGEO_SMTP_FROM="politie@example.be",
        BINGEO_SMTP_TIMEOUT_S="5",
        BINGEO_DISPATCH_POLL_S="0.3",
    ) as base:
        yield base


# the browser ---------------------------------------------------------------------------------


@dataclass
class Watch:
    """What the pages did wrong: console errors, uncaught exceptions, requests off loopback."""

    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def clean(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected)]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: str) -> Iterator:
    """A fresh page (own storage) that blocks and records every request off 127.0.0.1."""
    watch = Watch()
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="nl-BE")
    context.route("**/*", _local_only(watch))
    page = context.new_page()
    _watch_console(page, watch)
    page.watch = watch
    yield page
    context.close()
    assert watch.clean() == [], watch.errors
    assert watch.outside == []  # every script, style, font and image comes from bingeo


# tests ---------------------------------------------------------------------------------------


def test_login_in_dutch_and_french(page, server: str) -> None:
    page.goto(f"{server}/app")
    page.wait_for_selector("#login-submit")
    assert page.inner_text("#login-submit") == "Aanmelden"
    assert page.get_attribute("html", "lang") == "nl"
    _shot(page, "login-nl")
    page.select_option("#lang", "fr")
    assert page.inner_text("#login-submit") == "Se connecter"
    assert page.inner_text("h1") == "Connexion à bingeo"
    assert page.get_attribute("html", "lang") == "fr"
    _shot(page, "login-fr")
    # A wrong password: a clear message (the browser logs the 401 answer itself).
    page.watch.expected.append("401")
    page.fill("#login-name", "analyst")
    page.fill("#login-password", "not the password")
    page.click("#login-submit")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert page.inner_text("#login-error") == (
        "Échec de la connexion : nom inconnu ou mot de passe erroné"
    )
    # Every text exists in both languages.
    missing = page.evaluate(
        "() => [...Object.keys(I18N.nl).filter((k) => !(k in I18N.fr)),"
        " ...Object.keys(I18N.fr).filter((k) => !(k in I18N.nl))]"
    )
    assert missing == []
    # The choice of language stays after login.
    _login(page, server, "analyst")
    assert page.inner_text("button[data-view=coverage]") == "Couverture"
    page.select_option("#lang", "nl")
    assert page.inner_text("button[data-view=coverage]") == "Dekking"
    page.click("#logout")
    page.wait_for_selector("#login-submit")


def test_analyst_sees_coverage_overlaps_and_gaps(page, server: str, town: Town) -> None:
    _login(page, server, "analyst")
    page.wait_for_selector("#fig-addresses", timeout=60_000)
    token = _token(server, "analyst")
    totals = _get(server, f"/coverage?zone={town.zone}", token)["totals"]
    overlaps = _get(server, f"/overlaps?zone={town.zone}", token)
    gaps = _get(server, f"/gaps?zone={town.zone}", token)
    assert _int(page.inner_text("#fig-addresses")) == totals["addresses"] > 50_000
    assert _int(page.inner_text("#fig-covered")) == totals["covered"] > 0
    assert _int(page.inner_text("#fig-uncovered")) == totals["uncovered"]
    assert _int(page.inner_text("#fig-networks")) == totals["networks"] == 3
    assert page.inner_text("#fig-share") == _pct_nl(totals["share_covered"])
    panel = page.inner_text("#panel")
    assert f"Overlappingen ({len(overlaps['features'])})" in panel
    assert len(overlaps["features"]) >= 1  # Kouter and Zuid share a sector
    assert f"Niet-gedekte buurten ({len(gaps['features'])})" in panel
    layers = page.inner_text(".leaflet-control-layers")
    for name in ("Dekking per sector", "Netwerken", "Overlappingen", "Niet-gedekte zones"):
        assert name in layers
    assert page.evaluate("document.querySelector('#map').classList.contains('no-tiles')")
    _shot(page, "analyst-map")
    assert _axe(page, server) == []  # with the results and their shapes shown


def test_officer_draws_polygon_previews_and_sends_relay_alert(
    page, server: str, town: Town, inbox: Inbox
) -> None:
    _login(page, server, "officer")
    page.wait_for_selector(".leaflet-draw-draw-polygon")
    page.wait_for_function("() => window.bingeo.map && window.bingeo.map.getZoom() > 12")
    # Around a point inside Kouter, clicked with the mouse on the map.
    inside = town.shapes["Kouter"].geoms[0].representative_point()
    lon, lat = _lonlat(inside)
    x, y = _pixel(page, lon, lat)
    page.click(".leaflet-draw-draw-polygon")
    corners = [
        (x - 90, y - 70),
        (x + 80, y - 90),
        (x + 110, y + 60),
        (x - 20, y + 100),
        (x - 100, y + 40),
    ]
    for i, (cx, cy) in enumerate(corners):
        _click_until(page, cx, cy, f"() => window.bingeo.vertices === {i + 1}")
    # Back on the first point: the polygon is closed and previewed.
    _click_until(page, *corners[0], "() => window.bingeo.lastTarget !== null")
    page.wait_for_function("() => window.bingeo.lastPreview !== null", timeout=30_000)
    page.wait_for_selector("#pv-networks")
    target = page.evaluate("window.bingeo.lastTarget")
    ring = target["area"]["coordinates"][0]
    assert len(ring) == len(corners) + 1
    # The drawn vertices are where the mouse clicked.
    for (cx, cy), (vlon, vlat) in zip(corners, ring, strict=False):
        px, py = _pixel(page, vlon, vlat)
        assert abs(px - cx) <= 1 and abs(py - cy) <= 1
    # The page's numbers equal the API's preview of the same polygon.
    messages = {lang: page.input_value(f"#msg-{lang}") for lang in ("nl", "fr", "de")}
    assert "Opgelet" in messages["nl"] and "Attention" in messages["fr"]
    token = _token(server, "officer")
    body = {"target": target, "mode": "relay", "messages": messages}
    preview = _post(server, "/alerts/preview", token, body)
    assert preview["networks"], "the drawn polygon reaches Kouter"
    assert town.networks["Kouter"] in [n["id"] for n in preview["networks"]]
    shown = {
        "pv-networks": len(preview["networks"]),
        "pv-addresses": preview["addresses"]["inside_area"],
        "pv-addresses-network": preview["addresses"]["inside_area_and_network"],
        "pv-members": preview["members"]["total"],
        "pv-coordinators": preview["coordinators"]["total"],
        "pv-recipients": preview["recipients"]["total"],
        "pv-edge": preview["edge"]["total"],
    }
    for selector, value in shown.items():
        assert _int(page.inner_text(f"#{selector}")) == value, selector
    assert preview["addresses"]["inside_area"] > 100
    assert _float(page.inner_text("#pv-cost")) == preview["cost"]["total_eur"] == 0.0
    for network in preview["networks"]:
        assert network["name"] in page.inner_text("#preview")
    _shot(page, "officer-preview")
    assert _axe(page, server) == []  # with the results and their shapes shown

    # Send through the coordinators and follow the delivery until every e-mail is out.
    before = len(inbox.messages)
    page.fill("#alert-reason", "inbraakgolf, e2e-test")
    page.click("#alert-send")
    page.wait_for_selector("#alert-sent")
    alert_id = int(page.get_attribute("#alert-sent", "data-alert-id"))
    expected = preview["recipients"]["total"]
    page.wait_for_function(
        f"() => document.querySelector('#as-sent') && "
        f"document.querySelector('#as-sent').textContent === '{expected}'",
        timeout=60_000,
    )
    status = _get(server, f"/alerts/{alert_id}", token)
    assert status["recipients"]["by_status"] == {"sent": expected}
    wait_until(lambda: len(inbox.messages) >= before + expected, 10, "the e-mails")
    received = inbox.messages[before:]
    reached = [n["id"] for n in preview["networks"]]
    assert sorted(m["To"] for m in received) == sorted(town.coordinators[i] for i in reached)
    for message in received:
        assert "buurtinformatienetwerk" in message.get_payload(decode=True).decode()
    page.locator("#delivery").scroll_into_view_if_needed()
    _shot(page, "officer-delivered")


def test_officer_draws_a_circle(page, server: str, town: Town) -> None:
    _login(page, server, "officer")
    page.wait_for_function("() => window.bingeo.map && window.bingeo.map.getZoom() > 12")
    lon, lat = _lonlat(town.shapes["Handel"].geoms[0].representative_point())
    x, y = _pixel(page, lon, lat)
    draw_circle(page, x, y, 80)
    page.wait_for_function("() => window.bingeo.lastPreview !== null", timeout=30_000)
    target = page.evaluate("window.bingeo.lastTarget")
    circle = target["circle"]
    assert circle["radius_m"] > 50
    assert abs(circle["lon"] - lon) < 1e-3 and abs(circle["lat"] - lat) < 1e-3
    messages = {lang: page.input_value(f"#msg-{lang}") for lang in ("nl", "fr", "de")}
    preview = _post(
        server,
        "/alerts/preview",
        _token(server, "officer"),
        {"target": target, "mode": "relay", "messages": messages},
    )
    assert town.networks["Handel"] in [n["id"] for n in preview["networks"]]
    assert _int(page.inner_text("#pv-addresses")) == preview["addresses"]["inside_area"] > 0
    assert _int(page.inner_text("#pv-networks")) == len(preview["networks"])


def test_planner_uploads_an_area_reads_the_report_fixes_and_saves_it(
    page, server: str, town: Town, tmp_path: Path
) -> None:
    area = town.proposal
    path = tmp_path / "voorstel.geojson"
    feature = {"type": "Feature", "properties": {"naam": "Voorstel"}, "geometry": area}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    token = _token(server, "planner")
    expected = _post(server, "/planning/validate", token, {"geometry": area})

    _login(page, server, "planner")
    page.wait_for_selector("#plan-file")
    page.set_input_files("#plan-file", str(path))
    page.wait_for_selector("#rp-valid", timeout=60_000)
    report = page.evaluate("window.bingeo.lastReport")
    assert "voorstel.geojson" in report["source"]
    assert _int(page.inner_text("#rp-addresses")) == expected["addresses_inside"] > 0
    assert _int(page.inner_text("#rp-members")) == expected["members_inside"]
    assert _int(page.inner_text("#rp-elsewhere")) == expected["addresses_covered_elsewhere"] > 0
    assert _int(page.inner_text("#rp-sectors")) == len(expected["sectors"])
    assert [o["network_id"] for o in report["overlaps"]] == [town.networks["Zuid"]]
    # The findings in Dutch: every one of the API's, none in the API's English.
    findings = page.inner_text("#rp-findings")
    codes = page.eval_on_selector_all("#rp-findings li", "items => items.map(i => i.dataset.code)")
    assert codes == [f["code"] for f in expected["findings"]]
    assert "overlap" in codes and "overlapt Zuid" in findings
    for finding in expected["findings"]:
        assert finding["message"] not in findings
    _shot(page, "planner-report")
    assert _axe(page, server) == []  # with the results and their shapes shown

    # Clip the overlap away: the new report has none, and fewer addresses.
    page.click("#plan-clip")
    page.wait_for_function(
        "() => window.bingeo.lastReport && window.bingeo.lastReport.overlaps.length === 0",
        timeout=60_000,
    )
    page.wait_for_selector("#rp-valid")
    clipped = page.evaluate("window.bingeo.lastReport")
    assert clipped["addresses_covered_elsewhere"] == 0
    assert clipped["addresses_inside"] < expected["addresses_inside"]
    assert _int(page.inner_text("#rp-addresses")) == clipped["addresses_inside"]
    page.click("#plan-snap")
    page.wait_for_function("() => window.bingeo.lastReport !== null", timeout=60_000)
    page.wait_for_selector("#plan-save")
    assert page.is_enabled("#plan-save"), page.inner_text("#rp-findings")
    page.fill("#plan-name", "BIN Voorstel e2e")
    page.click("#plan-save")
    page.wait_for_selector("#plan-saved")
    page.wait_for_selector("#lc-status")
    assert page.get_attribute("#lc-status", "data-status") == "idea"
    assert page.inner_text("#lc-status") == "idee"
    saved = _get(server, f"/networks?municipality={town.nis_code}&status=idea", token)
    assert [f["properties"]["name"] for f in saved["features"]] == ["BIN Voorstel e2e"]
    # The next step of the lifecycle, with the button of the page.
    steps = page.locator("#lifecycle button[data-step]")
    assert steps.count() >= 1
    network_id = saved["features"][0]["id"]
    lifecycle = _get(server, f"/networks/{network_id}/lifecycle", token)
    free = [s for s in lifecycle["next"] if not s["missing"] and not s["give_with_step"]]
    dutch = {"preparation": "Naar voorbereiding", "dissolved": "Naar opgeheven"}
    for step in lifecycle["next"]:
        assert page.inner_text(f"#lifecycle button[data-step={step['to']}]") == dutch[step["to"]]
    status = "idea"
    if free:
        status = free[0]["to"]
        page.click(f"#lifecycle button[data-step={status}]")
        page.wait_for_function(
            f"() => document.querySelector('#lc-status')?.dataset.status === '{status}'"
        )
    _shot(page, "planner-lifecycle")
    assert _axe(page, server) == []  # with the results and their shapes shown
    # In French: the state, the steps and the history of the same network.
    french = {
        "idea": "idée",
        "preparation": "préparation",
        "information_evening": "soirée d'information",
        "dissolved": "dissous",
    }
    page.select_option("#lang", "fr")
    page.click("#plan-networks a:text('BIN Voorstel e2e')")
    page.wait_for_selector(f"#lc-status[data-status={status}]")
    assert page.inner_text("#lc-status") == french[status]
    # The kind in French too: a BIN is a "partenariat local de prévention" (PLP).
    assert f"(PLP, {french[status]})" in page.inner_text("#plan-networks")
    for step in _get(server, f"/networks/{network_id}/lifecycle", token)["next"]:
        button = page.inner_text(f"#lifecycle button[data-step={step['to']}]")
        assert button == f"Vers {french[step['to']]}"
    if free:
        assert f"idée → {french[status]}" in page.inner_text("#lifecycle")
    _shot(page, "planner-lifecycle-fr")


def test_coordinator_sees_network_members_and_messages(page, server: str, town: Town) -> None:
    kouter = town.networks["Kouter"]
    officer = _token(server, "officer")
    inside = town.shapes["Kouter"].geoms[0].representative_point()
    lon, lat = _lonlat(inside)
    message = {"nl": "Coördinatorentest: let op in de Kouterbuurt.", "fr": "Test coordinateur."}
    body = {
        "target": {"circle": {"lon": lon, "lat": lat, "radius_m": 150}},
        "mode": "relay",
        "messages": message,
        "reason": "e2e coordinator inbox",
    }
    assert httpx.post(f"{server}/alerts", json=body, headers=_auth(officer), timeout=60).is_success

    _login(page, server, "coordinator")
    page.wait_for_selector("#network-name", timeout=30_000)
    token = _token(server, "coordinator")
    members = _get(server, f"/networks/{kouter}/members?limit=1000", token)
    inbox = _get(server, f"/networks/{kouter}/alerts", token)
    assert page.inner_text("#network-name") == "Kouter"
    assert _int(page.inner_text("#network-members")) == members["total"] > 0
    assert page.locator("#members tbody tr").count() == members["total"]
    assert page.locator("#inbox li").count() == inbox["total"] >= 1
    assert message["nl"] in page.inner_text("#inbox")
    assert all(a["messages"]["nl"] for a in inbox["alerts"])
    # Nothing of another network.
    other = town.networks["Zuid"]
    answer = httpx.get(f"{server}/networks/{other}/members", headers=_auth(token), timeout=30)
    assert answer.status_code == 403
    answer = httpx.get(f"{server}/networks/{other}/alerts", headers=_auth(token), timeout=30)
    assert answer.status_code == 403
    _shot(page, "coordinator")
    page.select_option("#lang", "fr")
    page.wait_for_selector("#network-name")
    assert "Messages reçus" in page.inner_text("#inbox")
    assert "Test coordinateur." in page.inner_text("#inbox")


SIZES = {"desktop": (1366, 768), "phone": (390, 844)}
# What each role's first view shows once it has loaded.
READY = {
    "analyst": "#fig-addresses",
    "officer": ".leaflet-draw-draw-polygon",
    "planner": "#plan-file",
    "coordinator": "#network-name",
}
AXE = "/static/vendor/axe-core/axe.min.js"
# The features a folium page's map holds, and its zoom (fitted to them, not the world).
FOLIUM_LAYERS = """() => {
  const map = Object.values(window).find((v) => v instanceof L.Map);
  let features = 0;
  map.eachLayer((layer) => { if (layer.feature) features += 1; });
  return { features, zoom: map.getZoom() };
}"""


def test_every_role_on_a_phone_and_a_desktop(browser, server: str, town: Town) -> None:
    """At 390×844 and 1366×768 the map is on screen, the logout button within reach, the page
    free of console errors and of axe-core violations; the phone's panel is a sheet."""
    watch = Watch()
    context = browser.new_context(viewport=_size("desktop"), locale="nl-BE")
    context.route("**/*", _local_only(watch))
    page = context.new_page()
    _watch_console(page, watch)
    page.goto(f"{server}/app")
    page.wait_for_selector("#login-submit")
    for size in SIZES:
        page.set_viewport_size(_size(size))
        assert _axe(page, server) == [], f"login at {size}"
        _shot(page, f"login-{size}")
    for role, ready in READY.items():
        page.set_viewport_size(_size("desktop"))
        _login(page, server, role)
        page.wait_for_selector(ready, timeout=60_000)
        page.wait_for_function("() => window.bingeo.map !== null")
        for size in SIZES:
            page.set_viewport_size(_size(size))
            page.wait_for_timeout(200)  # Leaflet follows the new size
            _assert_in_view(page, "#map", size)
            _assert_in_view(page, "#logout", size)
            assert _axe(page, server) == [], f"{role} at {size}"
            _shot(page, f"{role}-{size}")
        if role == "officer":
            _officer_preview_fits_the_desktop(page, town)
        page.set_viewport_size(_size("desktop"))
        page.click("#logout")
        page.wait_for_selector("#login-submit")
    context.close()
    assert watch.errors == []
    assert watch.outside == []


def test_phone_sheet_has_three_states_by_keyboard(page, server: str) -> None:
    page.set_viewport_size(_size("phone"))
    _login(page, server, "analyst")
    page.wait_for_selector("#fig-addresses", timeout=60_000)
    handle = page.locator("#sheet-handle")
    assert handle.is_visible()
    heights = {}
    for _ in range(3):
        sheet = page.get_attribute("#panel", "data-sheet")
        heights[sheet] = page.locator("#panel").bounding_box()["height"]
        assert handle.get_attribute("aria-label")  # the handle has a name in every state
        handle.focus()
        page.keyboard.press("Enter")
    assert heights["collapsed"] < heights["half"] < heights["full"]
    assert page.get_attribute("#panel", "data-sheet") == "half"  # round the cycle
    page.keyboard.press("ArrowUp")
    assert page.get_attribute("#panel", "data-sheet") == "full"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.get_attribute("#panel", "data-sheet") == "collapsed"
    assert handle.get_attribute("aria-expanded") == "false"
    # Collapsed, the map has the screen below the header.
    _assert_in_view(page, "#map", "phone")
    map_box = page.locator("#map").bounding_box()
    assert map_box["width"] == 390 and map_box["height"] > 844 / 2


def test_docs_are_served_without_internet(page, server: str) -> None:
    answer = httpx.get(f"{server}/docs", timeout=30)
    assert answer.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    for source in sources:
        assert httpx.get(f"{server}{source}", timeout=30).status_code == 200, source
    assert "nonce-" in answer.headers["content-security-policy"]
    page.goto(f"{server}/docs")
    # Swagger UI ran (under the page's policy) and read the API description.
    page.wait_for_selector(".opblock-tag", timeout=30_000)
    assert "alerts" in page.inner_text("#swagger-ui")


def test_written_maps_work_from_a_file_without_network(
    browser, town: Town, settings: Settings, tmp_path: Path
) -> None:
    """A wijk-level coverage map written by the CLI (in French), and a map whose network is a
    GeometryCollection, opened from file:// with every request off the machine blocked."""
    out = tmp_path / "maps" / "wijken.html"
    result = CliRunner().invoke(
        cli.app,
        ["coverage", "--municipality", town.nis_code, "--level", "wijk", "--out", str(out)]
        + ["--lang", "fr"],
        env={"BINGEO_DATABASE_NAME": settings.database_name, "BINGEO_TILES": ""},
    )
    assert result.exit_code == 0, result.output
    # A network with a stray line (what a repair or an intersection can give) stopped the page
    # in Leaflet's tooltips: "t.getElement is not a function", the map left at the world.
    shape = town.shapes["Kouter"].geoms[0]
    odd = gpd.GeoDataFrame(
        {"name": ["Kouter"], "kind": ["BIN"], "status": ["active"]},
        geometry=[shapely.GeometryCollection([shape, shapely.LineString(shape.exterior.coords)])],
        crs=STORAGE_EPSG,
    )
    collection = save_map(
        lambda assets: network_map(odd, tiles=None, assets_url=assets), tmp_path / "odd.html"
    )
    html_text = out.read_text()
    assert "https://" not in html_text.split("<body>")[0]  # no CDN in the page's head
    watch = Watch()
    context = browser.new_context(viewport=_size("desktop"))

    def route(request_route) -> None:
        if request_route.request.url.startswith("file://"):
            request_route.continue_()
        else:
            watch.outside.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    _watch_console(page, watch)
    for path, layers in ((out, "Chevauchements"), (collection, "BIN (bewoners)")):
        page.goto(path.as_uri())
        page.wait_for_selector(".leaflet-container .leaflet-overlay-pane canvas")
        shown = page.evaluate(FOLIUM_LAYERS)
        assert shown["features"] >= 1 and shown["zoom"] >= 11, (path.name, shown)
        assert layers in page.inner_text(".leaflet-control-layers")
        scale = page.locator(".leaflet-control-scale-line")
        assert scale.count() == 1 and re.fullmatch(r"\d+ k?m", scale.inner_text())
        _shot(page, f"file-map-{path.stem}")
    context.close()
    assert watch.errors == []
    assert watch.outside == []


# helpers -------------------------------------------------------------------------------------


def _size(name: str) -> dict[str, int]:
    width, height = SIZES[name]
    return {"width": width, "height": height}


def _local_only(watch: Watch):
    def route(request_route) -> None:
        if urlsplit(request_route.request.url).hostname == "127.0.0.1":
            request_route.continue_()
        else:
            watch.outside.append(request_route.request.url)
            request_route.abort()

    return route


def _watch_console(page, watch: Watch) -> None:
    page.on(
        "console",
        lambda m: (
            watch.errors.append(f"{m.text} {m.location.get('url')}") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))


def _assert_in_view(page, selector: str, size: str) -> None:
    width, height = SIZES[size]
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} not shown at {size}"
    assert box["width"] > 0 and box["height"] > 0, f"{selector} is {box} at {size}"
    assert box["x"] >= 0 and box["y"] >= 0, f"{selector} is {box} at {size}"
    assert box["x"] + box["width"] <= width + 0.5, f"{selector} is {box} at {size}"
    assert box["y"] + box["height"] <= height + 0.5, f"{selector} is {box} at {size}"


def _axe(page, server: str) -> list[str]:
    """axe-core's violations on the page (rule, impact and the first elements), none wanted."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(url=f"{server}{AXE}")
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}" for v in violations
    ]


def _officer_preview_fits_the_desktop(page, town: Town) -> None:
    """A drawn area's figures show beside the map at 1366×768 without scrolling."""
    page.set_viewport_size(_size("desktop"))
    page.wait_for_function("() => window.bingeo.map.getZoom() > 12")
    lon, lat = _lonlat(town.shapes["Handel"].geoms[0].representative_point())
    x, y = _pixel(page, lon, lat)
    draw_circle(page, x, y, 60)
    page.wait_for_selector("#pv-addresses", timeout=30_000)
    assert page.evaluate("document.querySelector('#panel').scrollTop") == 0
    # The key figures (the networks' table and the edge list below them may be long).
    _assert_in_view(page, "#preview .figures", "desktop")
    _assert_in_view(page, "#map", "desktop")
    _shot(page, "officer-preview-desktop")


def draw_circle(page, x: float, y: float, radius_px: float) -> None:
    """Draw a circle with the mouse: centre at (x, y), dragged ``radius_px`` to the right."""
    page.click(".leaflet-draw-draw-circle")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + radius_px / 2, y, steps=4)
    page.mouse.move(x + radius_px, y, steps=4)
    page.mouse.up()


def _login(page, server: str, name: str) -> None:
    if not page.url.startswith(f"{server}/app"):
        page.goto(f"{server}/app")
    page.wait_for_selector("#login-submit")
    page.fill("#login-name", name)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_function(
        f"() => document.querySelector('#whoami').textContent.startsWith('{name}')"
    )


def _click_until(page, x: float, y: float, done: str) -> None:
    """Click at (x, y) until ``done`` holds: leaflet-draw ignores a click that follows the
    previous one too closely (as a double click), so a person would click again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        page.wait_for_timeout(200)
        page.mouse.click(x, y)
        try:
            page.wait_for_function(done, timeout=3_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"the map did not take the click at ({x:.0f}, {y:.0f})")


def _token(server: str, name: str) -> str:
    answer = httpx.post(
        f"{server}/auth/login", json={"name": name, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _get(server: str, path: str, token: str) -> dict:
    answer = httpx.get(f"{server}{path}", headers=_auth(token), timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _post(server: str, path: str, token: str, body: dict) -> dict:
    answer = httpx.post(f"{server}{path}", json=body, headers=_auth(token), timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _pixel(page, lon: float, lat: float) -> tuple[float, float]:
    """The page coordinates of a point on the map."""
    box = page.locator("#map").bounding_box()
    point = page.evaluate(
        "([lat, lon]) => window.bingeo.map.latLngToContainerPoint([lat, lon])", [lat, lon]
    )
    return box["x"] + point["x"], box["y"] + point["y"]


def _lonlat(point) -> tuple[float, float]:
    lon, lat = storage_to_geojson(point)["coordinates"]
    return lon, lat


def _int(text_: str) -> int:
    return int(re.sub(r"\D", "", text_))


def _float(text_: str) -> float:
    return float(text_.replace(".", "").replace(",", "."))


def _pct_nl(share: float) -> str:
    return f"{100 * share:.1f}".rstrip("0").rstrip(".").replace(".", ",") + " %"


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _busiest_sectors(engine: Engine, count: int) -> list[str]:
    """The sectors with the most addresses (central Gent, near one another)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(SECTORS.c.code, func.count())
            .select_from(SECTORS)
            .join(ADDRESSES, func.ST_Covers(SECTORS.c.geom, ADDRESSES.c.geom))
            .where(SECTORS.c.level == AreaLevel.sector)
            .group_by(SECTORS.c.code)
            .order_by(func.count().desc(), SECTORS.c.code)
            .limit(count)
        ).all()
    return [code for code, _ in rows]


def _neighbour(engine: Engine, code: str, taken: list[str]) -> str:
    """A sector touching sector ``code`` that is not one of ``taken``."""
    other = SECTORS.alias("other")
    with engine.connect() as connection:
        return connection.execute(
            select(other.c.code)
            .join(SECTORS, func.ST_Touches(SECTORS.c.geom, other.c.geom))
            .where(
                SECTORS.c.level == AreaLevel.sector,
                other.c.level == AreaLevel.sector,
                SECTORS.c.code == code,
                other.c.code.not_in(taken),
            )
            .order_by(other.c.code)
            .limit(1)
        ).scalar_one()


def _sectors(engine: Engine, codes: list[str]) -> MultiPolygon:
    with engine.connect() as connection:
        wkb = connection.execute(
            select(func.ST_AsBinary(func.ST_Multi(func.ST_Union(SECTORS.c.geom)))).where(
                SECTORS.c.level == AreaLevel.sector, SECTORS.c.code.in_(codes)
            )
        ).scalar_one()
    shape = shapely.from_wkb(bytes(wkb))
    return shape if shape.geom_type == "MultiPolygon" else MultiPolygon([shape])
