"""Alerts: preview against an independent PostGIS computation on real Gent data; sending through
a real SMTP server and a real HTTP gateway; a dispatcher killed mid-send delivers exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import shapely
from aiosmtpd.controller import Controller
from api_helpers import CENTRE_X, assert_error, load_places, square
from db_helpers import empty_tables
from geoalchemy2.shape import from_shape
from live_server import free_port, wait_until
from shapely.geometry import MultiPolygon
from sqlalchemy import Engine, func, insert, literal, select

from bingeo.access import Actor, Principal
from bingeo.alerts import (
    MESSAGE_MAX_CHARS,
    OFFICIAL_NAMES,
    AlertArea,
    CapAlert,
    Filters,
    NetworkIndex,
    NetworkShape,
    PointGrid,
    cap_xml,
    check_cap,
    circle_area,
    circle_from_lonlat,
    idempotency_key,
    polygon_area,
    reach,
    render_email,
    render_sms,
    sms_info,
)
from bingeo.db.models import (
    SRID,
    Address,
    AddressNetwork,
    Alert,
    AlertRecipient,
    AreaLevel,
    AuditEntry,
    Base,
    Member,
    Network,
    NetworkContact,
    NetworkKind,
    NetworkStatus,
    ReferenceArea,
    Role,
)
from bingeo.errors import Forbidden, InvalidInput
from bingeo.geometry import geojson_to_storage
from bingeo.matching import AddressPoints, lonlat_to_storage
from bingeo.members import MemberInput
from bingeo.services import alerts as service
from bingeo.services import networks as network_service
from bingeo.services.dispatch import run_worker
from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.matching import rematch_all
from bingeo.services.members import register_member
from bingeo.settings import Settings

ADMIN = Actor(principal=Principal(user_id=1, name="admin", role=Role.admin))
OFFICER = Actor(principal=Principal(user_id=2, name="officer", role=Role.police_officer,
                                    police_zone_code="ipz1"))  # fmt: skip
ANALYST = Actor(principal=Principal(user_id=3, name="analyst", role=Role.police_analyst,
                                    police_zone_code="ipz1"))  # fmt: skip
ADDRESSES = Address.__table__
NETWORKS = Network.__table__
MEMBERS = Member.__table__
RECIPIENTS = AlertRecipient.__table__
CONTACTS = NetworkContact.__table__
PAIRS = AddressNetwork.__table__
GENT_CENTRE = (3.7250, 51.0540)
MESSAGES = {
    "nl": "Opgelet: inbraken in uw buurt. Sluit ramen en deuren.",
    "fr": "Attention : cambriolages dans votre quartier. Fermez portes et fenêtres.",
    "de": "Achtung: Einbrüche in Ihrer Nachbarschaft. Schließen Sie Fenster und Türen.",
}


# pure rules ------------------------------------------------------------------------------------


def test_grid_answers_as_testing_every_point() -> None:
    """The read model's grid of cells changes no answer: circles and polygons give the addresses
    (inside, inside a network, near the edge) that testing every point gives, points on cell
    edges, on the circle and on a network's edge included; ids map back to positions."""
    rng = np.random.default_rng(7)
    x0, y0 = 104_000.0, 192_000.0
    # Random points, points on cell edges (multiples of 200 m from the grid's origin) and points
    # exactly on the circle.
    angles = rng.uniform(0, 2 * np.pi, 500)
    x = np.concatenate(
        [rng.uniform(x0, x0 + 4000, 30_000), x0 + 200.0 * rng.integers(0, 20, 2000),
         x0 + 2000 + 1000.0 * np.cos(angles), [x0 + 3000.0, x0]]
    )  # fmt: skip
    y = np.concatenate(
        [rng.uniform(y0, y0 + 4000, 30_000), y0 + 200.0 * rng.integers(0, 20, 2000),
         y0 + 2000 + 1000.0 * np.sin(angles), [y0 + 2000.0, y0]]
    )  # fmt: skip
    ids = rng.permutation(len(x)) * 3 + 11
    network = shapely.MultiPolygon([shapely.box(x0 + 1500, y0 + 1000, x0 + 3600, y0 + 2600)])
    # A second network overlapping the first: an address in both counts once.
    second = shapely.MultiPolygon([shapely.box(x0 + 1000, y0 + 1800, x0 + 2600, y0 + 3300)])
    index = NetworkIndex(
        [
            NetworkShape(1, "N1", "n", "BIN", "active", None, network),
            NetworkShape(2, "N2", "n", "BIN-Z", "active", None, second),
        ],
        AddressPoints.from_arrays(ids, x, y),
    )
    assert index.points.find([ids[5], ids[-1], 1]).tolist()[2] == -1
    assert index.points.ids[index.points.find([ids[5], ids[-1]])].tolist() == [ids[5], ids[-1]]
    in_first = shapely.intersects_xy(network, x, y)
    in_network = in_first | shapely.intersects_xy(second, x, y)
    triangle = shapely.Polygon(
        [(x0 + 210, y0 + 300), (x0 + 3800, y0 + 400), (x0 + 1900, y0 + 3700)]
    )
    circle = circle_area(x0 + 2000, y0 + 2000, 1000.0)
    for area in (circle, AlertArea(MultiPolygon([triangle]), "triangle")):
        if area.is_circle:
            distance = np.hypot(x - (x0 + 2000), y - (y0 + 2000))
            inside, edge = distance <= 1000.0, np.abs(distance - 1000.0) <= 25.0
        else:
            inside = shapely.intersects_xy(area.polygon, x, y)
            edge = shapely.dwithin(area.polygon.boundary, shapely.points(x, y), 25.0)
        reached = reach(area, index, Filters())
        assert reached.inside_count == int(np.count_nonzero(inside))
        assert reached.in_network_count == int(np.count_nonzero(inside & in_network))
        assert reached.networks[0].addresses_inside == int(np.count_nonzero(inside & in_first))
        assert reached.edge_ids.tolist() == sorted(ids[edge].tolist())
        assert reached.inside(ids).tolist() == inside.tolist()
        # Addresses taken out of the area and added from outside, as the edge list allows; an
        # address both included and excluded stays out.
        out, extra = ids[inside][:10], ids[~inside][:5]
        adjusted = reach(
            area, index, Filters(), include=[*extra.tolist(), int(out[0])], exclude=out.tolist()
        )
        expected = inside & ~np.isin(ids, out) | np.isin(ids, extra)
        assert adjusted.inside(ids).tolist() == expected.tolist()
        assert adjusted.inside_count == int(np.count_nonzero(expected))
        assert adjusted.in_network_count == int(np.count_nonzero(expected & in_network))
        assert adjusted.networks[0].addresses_inside == int(np.count_nonzero(expected & in_first))
        # Networks that do not pass the filters count nothing.
        only_bin = reach(area, index, Filters(kinds=("BIN",)))
        assert only_bin.in_network_count == int(np.count_nonzero(inside & in_first))
        assert reach(area, index, Filters(statuses=("dormant",))).in_network_count == 0


def test_sms_length_and_segments() -> None:
    assert sms_info("a" * 160) == sms_info("a" * 160).__class__("GSM-7", 160, 1)
    assert sms_info("a" * 161).segments == 2
    assert sms_info("a" * 306).segments == 2 and sms_info("a" * 307).segments == 3
    # The euro sign and brackets take two septets (GSM-7 extension table).
    assert sms_info("€" * 80).characters == 160 and sms_info("€" * 81).segments == 2
    assert sms_info("ê" * 70) == sms_info("ê" * 70).__class__("UCS-2", 70, 1)
    assert sms_info("ê" * 71).segments == 2 and sms_info("ê" * 135).segments == 3
    # A character outside the BMP counts as two UTF-16 units.
    assert sms_info("🚓").characters == 2


def test_templates_use_official_names_and_fall_back() -> None:
    assert OFFICIAL_NAMES["nl"] == "buurtinformatienetwerk (BIN)"
    assert OFFICIAL_NAMES["fr"] == "partenariat local de prévention (PLP)"
    assert OFFICIAL_NAMES["de"] == "Nachbarschaftsinformationsnetzwerk (NIN)"
    for lang in ("nl", "fr", "de"):
        subject, body = render_email("coordinator", MESSAGES, lang, "Kouter")
        assert OFFICIAL_NAMES[lang] in body and MESSAGES[lang] in body and "Kouter" in subject
        assert render_sms(MESSAGES, lang).endswith(MESSAGES[lang])
    # No French text: French recipients get the Dutch one.
    assert render_sms({"nl": "Let op"}, "fr") == "Politie (BIN): Let op"


def test_cap_export_is_valid_cap_1_2() -> None:
    sent = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC)
    circle = circle_from_lonlat(*GENT_CENTRE, 500)
    xml = cap_xml(CapAlert(1, "police@example.be", sent, "immediate", circle, MESSAGES))
    assert check_cap(xml) == []
    root = ET.fromstring(xml)
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    infos = root.findall("cap:info", ns)
    assert [i.find("cap:language", ns).text for i in infos] == ["nl-BE", "fr-BE", "de-BE"]
    lat_lon, radius = infos[0].find("cap:area/cap:circle", ns).text.split(" ")
    assert radius == "0.500" and lat_lon.startswith("51.05")
    drawn = polygon_area(square((3.72, 51.05)))
    xml = cap_xml(CapAlert(2, "police@example.be", sent, "expected", drawn, {"nl": "x"}))
    assert check_cap(xml) == []
    # The checker does catch misplaced elements and bad values.
    broken = xml.replace("<status>Actual</status>", "").replace(
        "<msgType>Alert</msgType>", "<msgType>Alert</msgType><status>Actual</status>"
    )
    assert any("status" in p for p in check_cap(broken))
    assert any("urgency" in p for p in check_cap(xml.replace("Expected", "Soon")))


# Gent: the preview against an independent PostGIS computation -----------------------------------


@pytest.fixture(scope="module")
def gent(engine: Engine, real_data: Path) -> dict:
    """Gent's sectors and CRAB addresses, test networks (one dissolved, one BIN-Z, one beside a
    drawn square) and members."""
    empty_tables(engine)
    folder = real_data / "gent"
    import_areas(engine, folder / "gent_statistical_sectors.geojson", AreaLevel.sector)
    import_addresses(engine, folder / "gent_addresses_crab2014.csv")
    codes = _busiest_sectors(engine, 10)
    ids = {
        "a": _network(engine, "A", _sectors(engine, codes[0:3])),
        "b": _network(engine, "B", _sectors(engine, codes[2:6])),
        "z": _network(engine, "Z", _sectors(engine, codes[6:8]), kind=NetworkKind.BIN_Z),
        "old": _network(engine, "Old", _sectors(engine, codes[8:10]), status="dissolved"),
    }
    # A square network west of a square the tests draw: they share one edge exactly.
    west = geojson_to_storage(square((3.700, 51.040), half=0.002))[0]
    ids["west"] = _network(engine, "West", west)
    # Members at addresses of each network, languages and channels mixed.
    with engine.connect() as connection:
        rows = connection.execute(
            select(PAIRS.c.network_id, PAIRS.c.address_id)
            .where(PAIRS.c.address_id % 40 == 0)
            .order_by(PAIRS.c.network_id, PAIRS.c.address_id)
        ).all()
    languages = ("nl", "fr", "de")
    channels = (("email",), ("sms",), ("email", "voice"), ("sms", "email"))
    for i, (network_id, address_id) in enumerate(rows):
        register_member(
            engine,
            ADMIN,
            network_id,
            address_id=address_id,
            member=MemberInput(
                name=f"Member {i}",
                language=languages[i % 3],
                channels=channels[i % 4],
                consent_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                email=f"m{i}@example.be",
                phone=f"+3247000{i:04d}",
            ),
        )
    with engine.begin() as connection:
        for network_id in ids.values():
            connection.execute(
                insert(CONTACTS).values(
                    network_id=network_id,
                    role="coordinator",
                    name="Coordinator",
                    email=f"coord{network_id}@example.be",
                    language="nl",
                )
            )
    return ids


AREAS = {
    # Over networks A and B (the south of the centre).
    "pentagon": {
        "type": "Polygon",
        "coordinates": [
            [
                [3.715, 51.030],
                [3.740, 51.028],
                [3.748, 51.040],
                [3.725, 51.048],
                [3.708, 51.040],
                [3.715, 51.030],
            ]
        ],  # fmt: skip
    },
    # Over A and West (south-west), and over B, Z and the dissolved network (north-west).
    "two parts": {
        "type": "MultiPolygon",
        "coordinates": [
            [[[3.700, 51.030], [3.720, 51.030], [3.720, 51.045], [3.700, 51.045], [3.700, 51.030]]],
            [[[3.695, 51.052], [3.730, 51.052], [3.730, 51.068], [3.695, 51.068], [3.695, 51.052]]],
        ],
    },
    # Shares its west edge with network "West" exactly, and overlaps nothing else.
    "beside west": square((3.704, 51.040), half=0.002),
}


@pytest.mark.parametrize("name", sorted(AREAS))
def test_preview_of_drawn_polygons_equals_postgis(gent: dict, engine: Engine, name: str) -> None:
    area = polygon_area(AREAS[name])
    preview = _preview(engine, area)
    expected = _postgis_answer(engine, area)
    assert _answer(preview) == expected
    if name == "beside west":
        assert preview["networks_edge_only"] == [gent["west"]]
        assert gent["west"] not in [n["id"] for n in preview["networks"]]
        assert expected["edge_only"] == [gent["west"]]


@pytest.mark.parametrize("radius_m", [200.0, 750.0, 2500.0])
def test_preview_of_circles_equals_postgis(gent: dict, engine: Engine, radius_m: float) -> None:
    area = circle_from_lonlat(*GENT_CENTRE, radius_m)
    preview = _preview(engine, area)
    assert _answer(preview) == _postgis_answer(engine, area)
    # Real circles: the corners of the bounding box are not inside.
    box_only = _postgis_count(
        engine,
        func.ST_Covers(func.ST_Envelope(_geom(area.polygon)), ADDRESSES.c.geom),
    )
    assert preview["addresses"]["inside_area"] < box_only


def test_preview_filters_members_cost_and_no_side_effect(gent: dict, engine: Engine) -> None:
    area = polygon_area(AREAS["two parts"])
    before = _table_counts(engine)
    all_kinds = service.make_request(area, messages=MESSAGES, mode="direct")
    only_bin = service.make_request(area, messages=MESSAGES, mode="direct", kinds=["BIN"])
    with_old = service.make_request(
        area, messages=MESSAGES, mode="direct", statuses=["active", "dissolved"]
    )
    settings = Settings()
    result = service.preview_alert(engine, ADMIN, all_kinds, settings)
    ids = {n["id"] for n in result["networks"]}
    assert {gent["a"], gent["b"], gent["z"], gent["west"]} == ids
    assert gent["z"] not in {
        n["id"] for n in service.preview_alert(engine, ADMIN, only_bin, settings)["networks"]
    }
    assert gent["old"] in {
        n["id"] for n in service.preview_alert(engine, ADMIN, with_old, settings)["networks"]
    }
    # Members whose address lies inside the area, counted independently in PostGIS.
    with engine.connect() as connection:
        members = connection.execute(
            select(MEMBERS.c.language, MEMBERS.c.channels)
            .join(ADDRESSES, ADDRESSES.c.id == MEMBERS.c.address_id)
            .where(
                func.ST_Covers(_geom(area.polygon), ADDRESSES.c.geom),
                MEMBERS.c.network_id.in_(sorted(ids)),
            )
        ).all()
    assert result["members"]["total"] == len(members) > 0
    channels = [c for _, cs in members for c in cs]
    assert result["recipients"]["total"] == len(channels)
    assert result["cost"]["sms_messages"] == channels.count("sms")
    assert result["cost"]["voice_calls"] == channels.count("voice")
    assert result["cost"]["total_eur"] == pytest.approx(
        result["cost"]["sms_segments"] * settings.sms_cost_eur
        + channels.count("voice") * settings.voice_cost_eur
    )
    # Relay: one e-mail per coordinator of a reached network; opaque ids, no contact details.
    relay = service.preview_alert(
        engine, ADMIN, service.make_request(area, messages=MESSAGES), settings
    )
    assert relay["recipients"]["by_channel"] == {"email": len(ids)}
    assert len(relay["coordinators"]["ids"]) == len(ids)
    assert "@" not in json.dumps(relay, default=str) and "+32" not in json.dumps(relay)
    edge = relay["edge"]
    assert edge["total"] > 0 and {"street", "house_number", "side"} <= set(edge["addresses"][0])
    assert edge["total"] == _postgis_count(
        engine, func.ST_DWithin(func.ST_Boundary(_geom(area.polygon)), ADDRESSES.c.geom, 25.0)
    )
    assert _table_counts(engine) == before


def test_preview_by_address_and_refusals(gent: dict, engine: Engine) -> None:
    with engine.connect() as connection:
        address_id, x, y = connection.execute(
            select(ADDRESSES.c.id, func.ST_X(ADDRESSES.c.geom), func.ST_Y(ADDRESSES.c.geom))
            .where(ADDRESSES.c.geom.is_not(None))
            .order_by(ADDRESSES.c.id)
            .limit(1)
        ).one()
    area = service.parse_target(engine, {"address_id": address_id, "radius_m": 300}, Settings())
    assert area.centre == (x, y) and area.radius_m == 300
    request = service.make_request(area, messages=MESSAGES)
    with pytest.raises(Forbidden):
        service.preview_alert(engine, ANALYST, request, Settings())
    with pytest.raises(InvalidInput):
        service.make_request(area, messages={"en": "hello"})
    with pytest.raises(InvalidInput):
        service.parse_target(
            engine, {"circle": {"lon": 3.7, "lat": 51.0, "radius_m": 5}}, Settings()
        )


# sending: a real SMTP server and a real HTTP gateway ---------------------------------------------


class Inbox:
    """A loopback SMTP server's handler: it keeps every raw attempt and drops messages whose
    Message-ID it has accepted before, as real mail systems do; ``delay`` slows the answer
    (after the message is safely stored, so a client killed meanwhile never learns of it)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.attempts: list[str] = []
        self.delivered: dict[str, email.message.Message] = {}
        self.duplicates = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        message = email.message_from_bytes(envelope.content)
        message_id = message["Message-ID"]
        with self.lock:
            self.attempts.append(message_id)
            if message_id in self.delivered:
                self.duplicates += 1
            else:
                self.delivered[message_id] = message
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK queued"


class Gateway:
    """A loopback HTTP server standing in for the SMS/voice gateway; it drops repeated
    Idempotency-Keys and answers them as the first time. ``lose_first`` keys get a 503 after
    being accepted (a lost answer), so the client retries."""

    def __init__(self, lose_first: int = 0) -> None:
        self.attempts: list[tuple[str, dict]] = []
        self.delivered: dict[str, dict] = {}
        self.duplicates = 0
        self.lose_first = lose_first
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                with gateway.lock:
                    gateway.attempts.append((key, body))
                    first = key not in gateway.delivered
                    if first:
                        gateway.delivered[key] = body
                    else:
                        gateway.duplicates += 1
                    lose = first and gateway.lose_first > 0
                    if lose:
                        gateway.lose_first -= 1
                self.send_response(503 if lose else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"id": key}).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/messages"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def gateway():
    server = Gateway()
    yield server
    server.close()


@pytest.fixture
def town(db: Engine) -> dict:
    """Two networks in zone ipz1 (one beside the other) and one in zone ipz2, 30 addresses in
    each, members with every channel and language, and a coordinator per network."""
    ids = {}
    # Where the networks lie comes from their areas: a municipality in each zone.
    load_places(
        db,
        {
            "24011": ("ipz1", (4.72, 50.80, 4.80, 50.855)),
            "24099": ("ipz2", (4.72, 50.855, 4.80, 50.91)),
        },
    )
    for key, centre in (
        ("a", CENTRE_X),
        ("b", (CENTRE_X[0] + 0.008, CENTRE_X[1])),
        ("c", (CENTRE_X[0], CENTRE_X[1] + 0.05)),
    ):
        geometry = geojson_to_storage(square(centre))[0]
        ids[key] = network_service.create_network(
            db, ADMIN, name=f"Wijk {key.upper()}", kind=NetworkKind.BIN, geometry=geometry,
            status=NetworkStatus.active,
        ).id  # fmt: skip
        x0, y0 = lonlat_to_storage(*centre)
        with db.begin() as connection:
            connection.execute(
                insert(ADDRESSES),
                [
                    {
                        "source_key": f"{key}{i}",
                        "street": f"Straat {key.upper()}",
                        "house_number": str(i + 1),
                        "postcode": "3360",
                        "geom": from_shape(
                            shapely.Point(x0 - 150 + 10 * i, y0 + (i % 5) * 20), srid=SRID
                        ),
                    }
                    for i in range(30)
                ],
            )
    rematch_all(db)
    with db.connect() as connection:
        pairs = connection.execute(
            select(PAIRS.c.network_id, PAIRS.c.address_id).order_by(PAIRS.c.address_id)
        ).all()
    channels = (("email",), ("sms",), ("voice",), ("email", "sms"))
    for i, (network_id, address_id) in enumerate(pairs[::3]):
        register_member(
            db, ADMIN, network_id, address_id=address_id,
            member=MemberInput(
                name=f"Member {i}", language=("nl", "fr", "de")[i % 3], channels=channels[i % 4],
                consent_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                email=f"member{i}@example.be", phone=f"+3247100{i:04d}",
            ),
        )  # fmt: skip
    with db.begin() as connection:
        for key, network_id in ids.items():
            connection.execute(
                insert(CONTACTS).values(
                    network_id=network_id, role="coordinator", name=f"Coordinator {key}",
                    email=f"coord-{key}@example.be", language="fr" if key == "b" else "nl",
                )
            )  # fmt: skip
    return ids


def test_preview_follows_changes_to_addresses_networks_and_members(town: dict, db: Engine) -> None:
    """The preview's read model (addresses, networks, members, coordinators) is reloaded when
    they change, by the part that changed: after each change it equals PostGIS."""
    # Not a round size: a share of exactly 0.5625 would round differently on each side.
    area = polygon_area(square(CENTRE_X, half=0.00307))
    first = _preview(db, area)
    assert _answer(first) == _postgis_answer(db, area)
    model = service.read_model(db)
    x0, y0 = lonlat_to_storage(*CENTRE_X)
    # A new address inside the area and network A.
    with db.begin() as connection:
        connection.execute(
            insert(ADDRESSES).values(
                source_key="new", street="Nieuwe straat", house_number="1", postcode="3360",
                geom=from_shape(shapely.Point(x0, y0 - 50), srid=SRID),
            )
        )  # fmt: skip
    second = _preview(db, area)
    assert second["addresses"]["inside_area"] == first["addresses"]["inside_area"] + 1
    assert _answer(second) == _postgis_answer(db, area)
    assert service.read_model(db) is not model
    # Network A shrunk to its western half: its eastern addresses leave it.
    network = network_service.get_network(db, ADMIN, town["a"])
    minx, miny, maxx, maxy = network.geometry.bounds
    west = MultiPolygon([shapely.box(minx, miny, x0, maxy)])
    network_service.update_network(
        db, ADMIN, town["a"], version=network.version, changes={"geometry": west}, reason="test"
    )
    third = _preview(db, area)
    assert _answer(third) == _postgis_answer(db, area)
    inside_a = {n["id"]: n["addresses_inside"] for n in third["networks"]}[town["a"]]
    assert 0 < inside_a < {n["id"]: n["addresses_inside"] for n in second["networks"]}[town["a"]]
    places = service.read_model(db).networks
    # A member registered at an address inside the area is counted at once.
    with db.connect() as connection:
        address_id = connection.execute(
            select(ADDRESSES.c.id).where(ADDRESSES.c.source_key == "new")
        ).scalar_one()
    register_member(
        db, ADMIN, town["a"], address_id=address_id,
        member=MemberInput(
            name="New member", language="de", channels=("sms",),
            consent_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), phone="+32471999999",
        ),
    )  # fmt: skip
    fourth = _preview(db, area)
    assert fourth["members"]["total"] == third["members"]["total"] + 1
    assert fourth["members"]["by_language"].get("de", 0) == (
        third["members"]["by_language"].get("de", 0) + 1
    )
    # Only the part that changed was reloaded: the addresses and networks were kept.
    assert service.read_model(db).networks is places
    # A coordinator added by hand in SQL is counted too (the tables' triggers see every write).
    with db.begin() as connection:
        connection.execute(
            insert(CONTACTS).values(
                network_id=town["a"], role="coordinator", name="By hand",
                email="hand@example.be", language="nl",
            )
        )  # fmt: skip
    fifth = _preview(db, area)
    assert fifth["coordinators"]["total"] == fourth["coordinators"]["total"] + 1


def test_preview_edge_labels_equal_the_stored_addresses(town: dict, db: Engine) -> None:
    """The edge list's labels come from the read model: they equal the stored rows, awkward
    values included (no value and an empty one told apart, quotes, commas, a line break), and
    they follow a change of the addresses."""
    area = polygon_area(square(CENTRE_X, half=0.00307))
    _preview(db, area)  # the read model, before the new addresses
    minx, miny, maxx, maxy = area.polygon.bounds
    awkward = [
        ('Rue "Haute", 1er étage', "12", None, "3360"),
        ("Line\nbreak", "", "", None),
        ("\\N", "\\N", None, "3360"),
        ("Kerkstraat", None, "b 2", "3360"),
    ]
    with db.begin() as connection:
        for k, (street, house_number, box, postcode) in enumerate(awkward):
            connection.execute(
                insert(ADDRESSES).values(
                    source_key=f"edge-{k}", street=street, house_number=house_number, box=box,
                    postcode=postcode,
                    geom=from_shape(
                        shapely.Point(maxx + (-5, 5)[k % 2], miny + 40 + 3 * k), srid=SRID
                    ),
                )
            )  # fmt: skip

    def stored(ids: list[int]) -> dict:
        with db.connect() as connection:
            rows = connection.execute(
                select(ADDRESSES.c.id, ADDRESSES.c.street, ADDRESSES.c.house_number,
                       ADDRESSES.c.box, ADDRESSES.c.postcode).where(ADDRESSES.c.id.in_(ids))
            ).all()  # fmt: skip
        keys = ("street", "house_number", "box", "postcode")
        return {r[0]: dict(zip(keys, r[1:], strict=True)) for r in rows}

    edge = _preview(db, area)["edge"]["addresses"]
    labels = {
        e["id"]: {k: e[k] for k in ("street", "house_number", "box", "postcode")} for e in edge
    }
    assert labels == stored(list(labels))
    assert {label["street"] for label in labels.values()} >= {a[0] for a in awkward}
    with db.begin() as connection:
        connection.execute(
            ADDRESSES.update().where(ADDRESSES.c.source_key == "edge-3").values(house_number="7")
        )
    edge = _preview(db, area)["edge"]["addresses"]
    assert {"Kerkstraat": "7"}.items() <= {e["street"]: e["house_number"] for e in edge}.items()


def test_relay_reaches_coordinators_by_real_smtp(town: dict, db: Engine, inbox: Inbox) -> None:
    settings = _settings(inbox=inbox)
    area = polygon_area(square((CENTRE_X[0] + 0.004, CENTRE_X[1]), half=0.002))
    request = service.make_request(area, messages=MESSAGES, reason="burglaries reported")
    sent = service.send_alert(db, OFFICER, request, settings)
    assert sent["recipients"]["by_kind"] == {"coordinator": 2}
    assert "@" not in json.dumps(sent)
    stats = run_worker(db, settings, until_idle=True)
    assert stats.sent == 2 and stats.failed == 0
    by_to = {m["To"]: m for m in inbox.delivered.values()}
    assert set(by_to) == {"coord-a@example.be", "coord-b@example.be"}
    body_b = by_to["coord-b@example.be"].get_payload(decode=True).decode()
    assert "partenariat local de prévention (PLP)" in body_b and MESSAGES["fr"] in body_b
    assert by_to["coord-a@example.be"]["Content-Language"] == "nl"
    status = service.alert_status(db, OFFICER, sent["id"])
    assert status["status"] == "done"
    assert status["recipients"]["by_channel"] == {"email": {"sent": 2}}
    # Who sent what to whom, when and why.
    with db.connect() as connection:
        audit = connection.execute(
            select(AuditEntry.__table__).where(AuditEntry.__table__.c.action == "send")
        ).one()
    assert audit.user_name == "officer" and audit.object_id == str(sent["id"])
    assert audit.details["reason"] == "burglaries reported"
    assert audit.details["networks"] == [town["a"], town["b"]]


def test_direct_reaches_members_by_their_channels(
    town: dict, db: Engine, inbox: Inbox, gateway: Gateway
) -> None:
    gateway.lose_first = 2  # two answers lost: retried with the same key, dropped by the gateway
    settings = _settings(inbox=inbox, gateway=gateway)
    area = polygon_area(square(CENTRE_X, half=0.003))
    request = service.make_request(
        area, messages=MESSAGES, mode="direct", urgency="immediate", reason="urgent"
    )
    preview = service.preview_alert(db, OFFICER, request, settings)
    sent = service.send_alert(db, OFFICER, request, settings)
    assert sent["recipients"] == preview["recipients"]
    with db.connect() as connection:
        rows = connection.execute(select(RECIPIENTS)).all()
        expected = connection.execute(
            select(MEMBERS.c.id, MEMBERS.c.channels, MEMBERS.c.email, MEMBERS.c.phone)
            .join(ADDRESSES, ADDRESSES.c.id == MEMBERS.c.address_id)
            .where(func.ST_Covers(_geom(area.polygon), ADDRESSES.c.geom))
        ).all()
    assert {(r.member_id, r.channel.value) for r in rows} == {
        (m.id, c) for m in expected for c in m.channels
    }
    assert all(r.idempotency_key == idempotency_key(sent["id"], "member", r.member_id,
                                                    r.channel.value) for r in rows)  # fmt: skip
    stats = run_worker(db, settings, until_idle=True)
    assert stats.failed == 0 and stats.retried == 2
    emails = {m["To"] for m in inbox.delivered.values()}
    assert emails == {m.email for m in expected if "email" in m.channels}
    phones = sorted((b["to"], b["channel"]) for b in gateway.delivered.values())
    assert phones == sorted(
        (m.phone, c) for m in expected for c in m.channels if c in ("sms", "voice")
    )
    assert gateway.duplicates == 2 and len(gateway.attempts) == len(gateway.delivered) + 2
    status = service.alert_status(db, OFFICER, sent["id"])
    assert status["recipients"]["by_status"] == {"sent": len(rows)}


def test_failures_retry_with_backoff_then_fail(town: dict, db: Engine) -> None:
    # Nothing listens on this port: every attempt is a transient failure.
    settings = _settings(smtp_port=free_port(), dispatch_max_attempts=3, dispatch_backoff_s=0.05)
    area = polygon_area(square(CENTRE_X, half=0.003))
    sent = service.send_alert(
        db, ADMIN, service.make_request(area, messages=MESSAGES, reason="test"), settings
    )
    started = time.monotonic()
    stats = run_worker(db, settings, until_idle=True)
    assert stats.retried == 2 and stats.failed == 1
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff 0.05 s, then 0.1 s
    with db.connect() as connection:
        row = connection.execute(select(RECIPIENTS)).one()
    assert row.status.value == "failed" and row.attempts == 3 and "SMTP" in row.last_error
    assert service.alert_status(db, ADMIN, sent["id"])["recipients"]["by_status"] == {"failed": 1}


def test_cancel_before_dispatch(town: dict, db: Engine, inbox: Inbox) -> None:
    settings = _settings(inbox=inbox)
    area = polygon_area(square(CENTRE_X, half=0.003))
    request = service.make_request(area, messages=MESSAGES, mode="direct", reason="test")
    sent = service.send_alert(db, OFFICER, request, settings)
    result = service.cancel_alert(db, OFFICER, sent["id"])
    assert result["cancelled"] == sent["recipients"]["total"] and result["already_out"] == 0
    run_worker(db, settings, until_idle=True)
    assert inbox.attempts == []
    status = service.alert_status(db, OFFICER, sent["id"])
    assert status["status"] == "cancelled"
    assert status["recipients"]["by_status"] == {"cancelled": sent["recipients"]["total"]}
    with pytest.raises(Exception, match="too late"):
        service.cancel_alert(db, OFFICER, sent["id"])


def test_officer_of_another_zone_is_refused(town: dict, db: Engine) -> None:
    area = polygon_area(square((CENTRE_X[0], CENTRE_X[1] + 0.05), half=0.003))
    request = service.make_request(area, messages=MESSAGES, reason="test")
    with pytest.raises(Forbidden):
        service.send_alert(db, OFFICER, request, Settings())
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(RECIPIENTS)).scalar() == 0
        refused = connection.execute(
            select(func.count())
            .select_from(AuditEntry.__table__)
            .where(AuditEntry.__table__.c.outcome == "refused")
        ).scalar()
    assert refused == 1


def test_worker_killed_mid_send_delivers_exactly_once(
    town: dict, db: Engine, settings: Settings, inbox: Inbox, gateway: Gateway
) -> None:
    inbox.delay = 0.5
    area = polygon_area(square(CENTRE_X, half=0.003))
    request = service.make_request(area, messages=MESSAGES, mode="direct", reason="test")
    sent = service.send_alert(db, ADMIN, request, _settings(inbox=inbox, gateway=gateway))
    total = sent["recipients"]["total"]
    emails = sent["recipients"]["by_channel"]["email"]
    assert emails >= 5
    env = {
        **os.environ,
        "BINGEO_DATABASE_NAME": settings.database_name,
        "BINGEO_SMTP_HOST": "127.0.0.1",
        "BINGEO_SMTP_PORT": str(inbox.port),
        "BINGEO_SMS_GATEWAY_URL": gateway.url,
        "BINGEO_DISPATCH_BATCH": "3",
        "BINGEO_DISPATCH_LEASE_S": "2",
        "BINGEO_DISPATCH_POLL_S": "0.2",
    }
    command = [str(Path(sys.executable).parent / "bingeo"), "worker"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(inbox.attempts) >= 3, 60, "the first e-mails")
        # The third e-mail is stored by the server, but its answer is still on the way.
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    with db.connect() as connection:
        states = dict(
            connection.execute(
                select(RECIPIENTS.c.status, func.count()).group_by(RECIPIENTS.c.status)
            ).all()
        )
    assert sum(n for s, n in states.items() if s.value == "sending") >= 1
    restarted = subprocess.run(
        [*command, "--until-idle"], env=env, capture_output=True, text=True, timeout=120
    )
    assert restarted.returncode == 0, restarted.stderr
    with db.connect() as connection:
        rows = connection.execute(select(RECIPIENTS)).all()
    assert {r.status.value for r in rows} == {"sent"}
    expected_ids = {
        f"<{r.idempotency_key}@alerts.bingeo>" for r in rows if r.channel.value == "email"
    }
    assert set(inbox.delivered) == expected_ids and len(inbox.delivered) == emails
    assert len(gateway.delivered) == total - emails
    assert inbox.duplicates >= 1  # the e-mail in flight at the kill was sent again, and dropped
    assert len(inbox.attempts) == emails + inbox.duplicates
    print(
        f"\nkilled worker: {len(inbox.attempts)} SMTP attempts for {emails} e-mails, "
        f"{inbox.duplicates} duplicates dropped by Message-ID; gateway {len(gateway.attempts)} "
        f"attempts for {total - emails} messages, {gateway.duplicates} dropped"
    )


# the HTTP API ----------------------------------------------------------------------------------


def test_api_preview_send_status_cap_cancel(client, world, db: Engine) -> None:
    body = {
        "target": {"circle": {"lon": CENTRE_X[0], "lat": CENTRE_X[1], "radius_m": 300}},
        "messages": {"nl": "Test", "fr": "Essai"},
        "mode": "relay",
        "statuses": ["idea", "active"],
        "reason": "test",
    }
    with db.begin() as connection:
        connection.execute(
            insert(CONTACTS).values(
                network_id=world.net_x, role="coordinator", name="C", email="c@example.be"
            )
        )
    preview = client.post("/alerts/preview", json=body, headers=world.auth("officer_a"))
    assert preview.status_code == 200, preview.text
    assert [n["id"] for n in preview.json()["networks"]] == [world.net_x]
    assert preview.json()["area"]["type"] == "circle"
    assert_error(client.post("/alerts/preview", json=body), 401)
    assert_error(client.post("/alerts", json=body, headers=world.auth("analyst_a")), 403)
    bad = {**body, "target": {"circle": {"lon": 3.0, "lat": 40.0, "radius_m": 300}}}
    assert_error(client.post("/alerts/preview", json=bad, headers=world.auth("officer_a")), 422)
    created = client.post("/alerts", json=body, headers=world.auth("officer_a"))
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]
    status = client.get(f"/alerts/{alert_id}", headers=world.auth("officer_a")).json()
    assert status["recipients"]["by_channel"] == {"email": {"queued": 1}}
    cap = client.get(f"/alerts/{alert_id}/cap.xml", headers=world.auth("officer_a"))
    assert cap.headers["content-type"].startswith("application/cap+xml")
    assert check_cap(cap.text) == [] and cap.text.count("<info>") == 2
    cancelled = client.post(f"/alerts/{alert_id}/cancel", headers=world.auth("officer_a"))
    assert cancelled.json()["cancelled"] == 1
    assert_error(client.post(f"/alerts/{alert_id}/cancel", headers=world.auth("admin")), 409)
    assert_error(client.get("/alerts/999999", headers=world.auth("admin")), 404)


# helpers ---------------------------------------------------------------------------------------


def _settings(*, inbox: Inbox | None = None, gateway: Gateway | None = None, **extra) -> Settings:
    values = {
        "smtp_host": "127.0.0.1",
        "smtp_port": inbox.port if inbox else 25,
        "sms_gateway_url": gateway.url if gateway else None,
        "dispatch_poll_s": 0.05,
        "dispatch_backoff_s": 0.05,
        "dispatch_lease_s": 30.0,
        "smtp_timeout_s": 5.0,
    }
    values.update(extra)
    return Settings(**values)


def _preview(engine: Engine, area) -> dict:
    request = service.make_request(area, messages=MESSAGES, mode="direct")
    return service.preview_alert(engine, ADMIN, request, Settings())


def _answer(preview: dict) -> dict:
    return {
        "networks": sorted(n["id"] for n in preview["networks"]),
        "addresses_by_network": {n["id"]: n["addresses_inside"] for n in preview["networks"]},
        "shares": {n["id"]: round(n["share_inside"], 3) for n in preview["networks"]},
        "inside": preview["addresses"]["inside_area"],
        "inside_network": preview["addresses"]["inside_area_and_network"],
        "edge_only": preview["networks_edge_only"],
    }


def _geom(geometry):
    return func.ST_GeomFromWKB(literal(shapely.to_wkb(geometry)), SRID)


def _postgis_answer(engine: Engine, area) -> dict:
    """The independent answer: plain PostGIS predicates on the stored tables."""
    n, a = NETWORKS, ADDRESSES
    active = n.c.status == "active"
    if area.is_circle:
        centre = func.ST_SetSRID(func.ST_MakePoint(*area.centre), SRID)
        reached = func.ST_Distance(n.c.geom, centre) < area.radius_m
        edge_only = func.ST_Distance(n.c.geom, centre) == area.radius_m
        inside = func.ST_DWithin(a.c.geom, centre, area.radius_m)
    else:
        polygon = _geom(area.polygon)
        reached = func.ST_Intersects(n.c.geom, polygon) & ~func.ST_Touches(n.c.geom, polygon)
        edge_only = func.ST_Touches(n.c.geom, polygon)
        inside = func.ST_Covers(polygon, a.c.geom)
    shape = _geom(area.polygon)
    with engine.connect() as connection:
        shared = func.ST_Area(func.ST_Intersection(n.c.geom, shape))
        # A circle never follows a network's edge: its area alone decides (see shares_area).
        perimeter = (
            0.0 if area.is_circle else func.ST_Perimeter(func.ST_Intersection(n.c.geom, shape))
        )
        candidates = connection.execute(
            select(n.c.id, shared, shared / func.ST_Area(n.c.geom), perimeter)
            .where(reached, active)
            .order_by(n.c.id)
        ).all()
        per_network = dict(
            connection.execute(
                select(n.c.id, func.count(a.c.id))
                .join(a, func.ST_Covers(n.c.geom, a.c.geom))
                .where(n.c.id.in_([r[0] for r in candidates]), inside)
                .group_by(n.c.id)
            ).all()
        )
        # Reached: sharing an address, or at least 1 m² at least 0.5 m wide on average; the
        # others only touch the area.
        networks = [
            r
            for r in candidates
            if (r[1] >= 1.0 and 2 * r[1] >= 0.5 * float(r[3])) or per_network.get(r[0], 0)
        ]
        slivers = [r[0] for r in candidates if r not in networks]
        ids = [r[0] for r in networks]
        in_network = connection.execute(
            select(func.count(func.distinct(a.c.id)))
            .select_from(n.join(a, func.ST_Covers(n.c.geom, a.c.geom)))
            .where(n.c.id.in_(ids), inside)
        ).scalar()
        edge = [r[0] for r in connection.execute(select(n.c.id).where(edge_only, active))]
    return {
        "networks": ids,
        "addresses_by_network": {i: per_network.get(i, 0) for i in ids},
        "shares": {r[0]: round(min(1.0, r[2]), 3) for r in networks},
        "inside": _postgis_count(engine, inside),
        "inside_network": in_network,
        "edge_only": sorted(edge + slivers),
    }


def _postgis_count(engine: Engine, condition) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(condition)).scalar()


def _table_counts(engine: Engine) -> dict:
    with engine.connect() as connection:
        return {
            t.name: connection.execute(select(func.count()).select_from(t)).scalar()
            for t in Base.metadata.sorted_tables
        }


def _busiest_sectors(engine: Engine, count: int) -> list[str]:
    table = ReferenceArea.__table__
    query = (
        select(table.c.code)
        .join(ADDRESSES, func.ST_Covers(table.c.geom, ADDRESSES.c.geom))
        .where(table.c.level == AreaLevel.sector)
        .group_by(table.c.code)
        .order_by(func.count().desc(), table.c.code)
        .limit(count)
    )
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(query)]


def _sectors(engine: Engine, codes: list[str]) -> MultiPolygon:
    table = ReferenceArea.__table__
    query = select(func.ST_AsBinary(table.c.geom)).where(table.c.code.in_(codes))
    with engine.connect() as connection:
        parts = [shapely.from_wkb(bytes(r[0])) for r in connection.execute(query)]
    union = shapely.union_all(parts)
    return union if isinstance(union, MultiPolygon) else MultiPolygon([union])


def _network(
    engine: Engine, name: str, geometry, *, kind=NetworkKind.BIN, status: str = "active"
) -> int:
    return network_service.create_network(
        engine, ADMIN, name=name, kind=kind, geometry=geometry, status=NetworkStatus(status)
    ).id


def test_messages_longer_than_their_channel_are_refused_naming_the_field(
    client, world, db: Engine
) -> None:
    officer = world.auth("officer_a")
    body = {
        "target": {"circle": {"lon": CENTRE_X[0], "lat": CENTRE_X[1], "radius_m": 300}},
        "messages": {"nl": "Kort bericht", "fr": "a" * (MESSAGE_MAX_CHARS + 1)},
        "mode": "relay",
        "reason": "test",
    }
    for path in ("/alerts/preview", "/alerts"):
        detail = assert_error(
            client.post(path, json=body, headers=officer), 422, "message_too_long"
        )
        assert f"messages.fr: {MESSAGE_MAX_CHARS + 1} characters" in detail["detail"]
    # 700 GSM characters fit an e-mail but not 4 SMS segments: refused when members may get an
    # SMS (direct), accepted for coordinators (relay).
    sms_long = body | {"messages": {"nl": "b" * 700}}
    refused = client.post("/alerts/preview", json=sms_long | {"mode": "direct"}, headers=officer)
    detail = assert_error(refused, 422, "message_too_long")["detail"]
    assert "messages.nl: the SMS needs 5 segments" in detail
    assert client.post("/alerts/preview", json=sms_long, headers=officer).status_code == 200
    headline = body | {"messages": {"nl": "Kort"}, "headline": {"nl": "h" * 201}}
    detail = assert_error(client.post("/alerts", json=headline, headers=officer), 422)["detail"]
    assert "headline.nl: 201 characters" in detail
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Alert)).scalar_one() == 0


def test_included_ids_are_found_in_any_grid_even_an_empty_one() -> None:
    """An alert area with no address (the send reads only the area's points) and an included
    id: the id is not found, no IndexError (it was a 500)."""
    empty = PointGrid(AddressPoints.from_arrays([], [], []))
    assert empty.find([1, 2**62]).tolist() == [-1, -1]
    grid = PointGrid(AddressPoints.from_arrays([5, 3], [100.0, 200.0], [100.0, 200.0]))
    assert grid.find([3, 4, 5]).tolist() == [grid.find([3])[0], -1, grid.find([5])[0]]
    assert sorted(grid.find([3, 5]).tolist()) == [0, 1]
