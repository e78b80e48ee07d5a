"""Alerts scoped to a drawn area (pure): the area, who it reaches, the messages, CAP 1.2 export.

One definition of "inside", shared by the preview, the send and the checks:

* an address is inside a drawn polygon when the polygon covers it (boundary included, as
  ``ST_Covers``: ``shapely.intersects_xy``, the same test as ``bingeo.matching``);
* an address is inside a circle when its distance from the centre is at most ``radius_m`` (as
  ``ST_DWithin``); the circle's polygon (``CIRCLE_QUAD_SEGS`` segments per quarter) is kept only
  to draw it and to compute the share of a network inside it;
* an address is inside a network when the network covers it (``bingeo.matching``'s rule);
* a network is reached when its interior meets the area's interior (``ST_Intersects`` and not
  ``ST_Touches``; for a circle: distance from the centre below ``radius_m``): a network that only
  shares an edge with the area is reported as adjacent, not reached.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point
from shapely.geometry.base import BaseGeometry

from bingeo.errors import InvalidGeometry, InvalidInput
from bingeo.geometry import (
    GeometryLimits,
    geojson_to_storage,
    geometry_outside_belgium,
    storage_to_geojson,
)
from bingeo.matching import AddressPoints, lonlat_to_storage

LANGUAGES = ("nl", "fr", "de")
MODES = ("relay", "direct")
DIRECT_SCOPES = ("area", "networks")
URGENCIES = ("immediate", "expected", "future", "unknown")
# 128 segments per quarter: the polygon of a 5 km circle stays within 0.2 m of the true circle.
CIRCLE_QUAD_SEGS = 128
MIN_RADIUS_M = 10.0
MAX_RADIUS_M = 20_000.0
EDGE_M = 25.0
SMS_MAX_SEGMENTS = 4

OFFICIAL_NAMES = {
    "nl": "buurtinformatienetwerk (BIN)",
    "fr": "partenariat local de prévention (PLP)",
    "de": "Nachbarschaftsinformationsnetzwerk (NIN)",
}
SHORT_NAMES = {"nl": "BIN", "fr": "PLP", "de": "NIN"}
DEFAULT_HEADLINES = {
    "nl": "Bericht van de politie",
    "fr": "Message de la police",
    "de": "Mitteilung der Polizei",
}
SMS_PREFIX = {"nl": "Politie ({short}): ", "fr": "Police ({short}) : ", "de": "Polizei ({short}): "}
RELAY_BODY = {
    "nl": (
        "Beste coördinator,\n\nDe politie vraagt u dit bericht door te sturen naar de leden van "
        "het {official} {network}:\n\n{message}\n\n-- \nVerstuurd via bingeo namens de politie."
    ),
    "fr": (
        "Madame, Monsieur le coordinateur,\n\nLa police vous demande de transmettre ce message "
        "aux membres du {official} {network} :\n\n{message}\n\n-- \nEnvoyé par bingeo au nom de "
        "la police."
    ),
    "de": (
        "Sehr geehrte Koordinatorin, sehr geehrter Koordinator,\n\ndie Polizei bittet Sie, diese "
        "Nachricht an die Mitglieder Ihres Netzwerks weiterzuleiten ({official} {network}):"
        "\n\n{message}\n\n"
        "-- \nVersandt über bingeo im Auftrag der Polizei."
    ),
}
DIRECT_BODY = {
    "nl": (
        "Beste deelnemer aan het {official} {network},\n\n{message}\n\n-- \nDe politie, via bingeo."
    ),
    "fr": "Cher membre du {official} {network},\n\n{message}\n\n-- \nLa police, via bingeo.",
    "de": (
        "Liebes Mitglied ({official} {network}),\n\n{message}\n\n-- \nIhre Polizei, über bingeo."
    ),
}

# GSM 03.38: the basic character set and the extension table (two septets each).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = set("^{}\\[~]|€\f")


# the area --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertArea:
    """Where an alert goes, in EPSG:31370: a polygon, or a circle (centre and radius)."""

    polygon: MultiPolygon
    description: str
    centre: tuple[float, float] | None = None
    radius_m: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def is_circle(self) -> bool:
        """True for a circle (inside = distance from the centre at most ``radius_m``)."""
        return self.centre is not None

    @property
    def centre_point(self) -> Point | None:
        """The centre as a point, for a circle."""
        return Point(self.centre) if self.centre else None

    def positions_inside(self, points: AddressPoints) -> np.ndarray:
        """Positions (increasing, so in x order) of the points inside the area."""
        positions = points.candidates(self.polygon.bounds if not self.is_circle else self._box())
        if len(positions) == 0:
            return positions
        x, y = points.x[positions], points.y[positions]
        if self.is_circle:
            inside = np.hypot(x - self.centre[0], y - self.centre[1]) <= self.radius_m
        else:
            shapely.prepare(self.polygon)
            inside = shapely.intersects_xy(self.polygon, x, y)
        return positions[inside]

    def reaches(self, network: BaseGeometry) -> bool:
        """Whether the network's interior meets the area's interior."""
        if self.is_circle:
            return bool(shapely.distance(network, self.centre_point) < self.radius_m)
        shapely.prepare(self.polygon)
        return bool(self.polygon.intersects(network) and not self.polygon.touches(network))

    def adjacent(self, network: BaseGeometry) -> bool:
        """Whether the network meets the area on its edge only."""
        if self.is_circle:
            return bool(shapely.distance(network, self.centre_point) == self.radius_m)
        return bool(self.polygon.touches(network))

    def share_of(self, network: BaseGeometry) -> float:
        """The share (0-1) of the network's area inside the area (circle: its polygon)."""
        if network.area <= 0:
            return 0.0
        shapely.prepare(self.polygon)
        if self.polygon.contains(network):
            return 1.0
        return float(min(1.0, self.polygon.intersection(network).area / network.area))

    def near_edge(
        self, points: AddressPoints, distance_m: float = EDGE_M
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the points within ``distance_m`` of the edge, and whether each is inside."""
        minx, miny, maxx, maxy = self.polygon.bounds if not self.is_circle else self._box()
        margin = distance_m + 1.0
        positions = points.candidates((minx - margin, miny - margin, maxx + margin, maxy + margin))
        if len(positions) == 0:
            return positions, np.zeros(0, dtype=bool)
        x, y = points.x[positions], points.y[positions]
        if self.is_circle:
            distance = np.hypot(x - self.centre[0], y - self.centre[1])
            near = np.abs(distance - self.radius_m) <= distance_m
            return positions[near], distance[near] <= self.radius_m
        boundary = self.polygon.boundary
        band = boundary.buffer(margin, quad_segs=4)
        shapely.prepare(band)
        rough = shapely.intersects_xy(band, x, y)
        positions, x, y = positions[rough], x[rough], y[rough]
        near = shapely.dwithin(boundary, shapely.points(x, y), distance_m)
        shapely.prepare(self.polygon)
        inside = shapely.intersects_xy(self.polygon, x[near], y[near])
        return positions[near], inside

    def as_dict(self) -> dict:
        """The area as plain data; geometry as GeoJSON (EPSG:4326)."""
        data: dict = {
            "type": "circle" if self.is_circle else "polygon",
            "description": self.description,
            "area_m2": round(float(self.polygon.area), 1),
            "geometry": storage_to_geojson(self.polygon, precision=6),
            "warnings": list(self.warnings),
        }
        if self.is_circle:
            lon, lat = storage_to_geojson(self.centre_point)["coordinates"]
            data["centre"] = {"lon": lon, "lat": lat}
            data["radius_m"] = self.radius_m
        return data

    def _box(self) -> tuple[float, float, float, float]:
        x, y = self.centre
        r = self.radius_m
        return (x - r, y - r, x + r, y + r)


def polygon_area(
    data: dict | str, *, limits: GeometryLimits | None = None, description: str | None = None
) -> AlertArea:
    """A drawn GeoJSON Polygon/MultiPolygon (EPSG:4326) as an alert area."""
    polygon, warnings = geojson_to_storage(data, label="area", limits=limits)
    return AlertArea(
        polygon=polygon,
        description=description or "drawn area",
        warnings=tuple(warnings),
    )


def circle_area(
    x: float, y: float, radius_m: float, *, description: str | None = None
) -> AlertArea:
    """A circle around a Lambert 72 point."""
    radius_m = _radius(radius_m)
    polygon = shapely.Point(x, y).buffer(radius_m, quad_segs=CIRCLE_QUAD_SEGS)
    area = MultiPolygon([polygon])
    if geometry_outside_belgium(area):
        raise InvalidGeometry("area: the circle leaves Belgium")
    return AlertArea(
        polygon=area,
        description=description or f"circle of {radius_m:g} m",
        centre=(float(x), float(y)),
        radius_m=radius_m,
    )


def circle_from_lonlat(
    lon: float, lat: float, radius_m: float, *, description: str | None = None
) -> AlertArea:
    """A circle around a WGS84 point (lon, lat)."""
    x, y = lonlat_to_storage(lon, lat)
    return circle_area(x, y, radius_m, description=description)


# networks and reach ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkShape:
    """A network as the alert rules need it: public facts and its area (EPSG:31370)."""

    id: int
    code: str
    name: str
    kind: str
    status: str
    police_zone_code: str | None
    geometry: BaseGeometry


class NetworkIndex:
    """Networks with prepared areas, an STRtree of their extents, and the addresses of ``points``
    each network covers (computed once per network, then kept)."""

    def __init__(self, networks: Iterable[NetworkShape], points: AddressPoints) -> None:
        self.networks = list(networks)
        self.points = points
        geoms = np.array([n.geometry for n in self.networks], dtype=object)
        for geom in geoms:
            # Prepared once here (and used once), so concurrent readers find it built.
            shapely.prepare(geom)
            shapely.intersects_xy(geom, 0.0, 0.0)
        self.geoms = geoms
        self.tree = shapely.STRtree(geoms)
        self._covered: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.networks)

    def candidates(self, area: AlertArea) -> list[int]:
        """Positions of the networks whose extent meets the area's extent."""
        if not self.networks:
            return []
        return sorted(int(i) for i in self.tree.query(shapely.box(*area.polygon.bounds)))

    def covered(self, i: int) -> np.ndarray:
        """Positions in ``points`` (increasing) of the addresses network ``i`` covers.

        The matching rule (``intersects_xy``: boundary included, as ``ST_Covers``); kept, so a
        read model tests each network's addresses once, not once per preview.
        """
        found = self._covered.get(i)
        if found is None:
            found = _covered(self.geoms[i], self.points)
            # A race computes the same array twice; either may stay.
            self._covered[i] = found
        return found

    def cover_all(self) -> None:
        """Compute what every network covers now (a read model does it before serving)."""
        for i in range(len(self.networks)):
            self.covered(i)


@dataclass(frozen=True)
class Filters:
    """Which networks an alert may reach: kinds and statuses (active by default)."""

    kinds: tuple[str, ...] = ("BIN", "BIN-Z")
    statuses: tuple[str, ...] = ("active",)

    def accepts(self, network: NetworkShape) -> bool:
        """Whether the network passes the filters."""
        return str(network.kind) in self.kinds and str(network.status) in self.statuses

    def as_dict(self) -> dict:
        """The filters as plain data."""
        return {"kinds": list(self.kinds), "statuses": list(self.statuses)}


@dataclass(frozen=True)
class ReachedNetwork:
    """A network the area reaches, its share inside, and its located addresses inside."""

    network: NetworkShape
    share_inside: float
    addresses_inside: int


@dataclass(frozen=True)
class Reach:
    """What an area reaches: networks, addresses inside, addresses near the edge."""

    networks: list[ReachedNetwork]
    adjacent: list[NetworkShape]
    inside_ids: np.ndarray  # located addresses inside the area (sorted)
    in_network_ids: np.ndarray  # of those, inside a reached network (sorted)
    edge_ids: np.ndarray  # within EDGE_M of the edge
    edge_inside: np.ndarray  # for each edge id, whether it lies inside

    @property
    def network_ids(self) -> list[int]:
        """Ids of the networks reached."""
        return [r.network.id for r in self.networks]


def reach(
    area: AlertArea,
    networks: NetworkIndex,
    filters: Filters,
    *,
    include: Sequence[int] = (),
    exclude: Sequence[int] = (),
) -> Reach:
    """Networks, addresses and edge addresses the area reaches (the one definition), among the
    addresses of ``networks.points``.

    ``include`` and ``exclude`` adjust the addresses inside (typically from the edge list).
    """
    points = networks.points
    positions = area.positions_inside(points)
    extra = _positions_of(points, include)
    drop = set(int(i) for i in exclude)
    if len(extra):
        positions = np.union1d(positions, extra)
    if drop:
        positions = positions[~np.isin(points.ids[positions], list(drop))]
    # Positions inside as a mask over the range they span: a network's addresses are looked up
    # in it directly (a big area holds ~100,000 addresses, a city network tens of thousands).
    start = int(positions[0]) if len(positions) else 0
    stop = int(positions[-1]) + 1 if len(positions) else 0
    inside = np.zeros(stop - start, dtype=bool)
    inside[positions - start] = True
    in_any = np.zeros(stop - start, dtype=bool)
    reached: list[ReachedNetwork] = []
    adjacent: list[NetworkShape] = []
    for i in networks.candidates(area):
        network = networks.networks[i]
        if not filters.accepts(network):
            continue
        geom = networks.geoms[i]
        if not area.reaches(geom):
            if area.adjacent(geom):
                adjacent.append(network)
            continue
        covered = networks.covered(i)
        lo, hi = np.searchsorted(covered, (start, stop))
        hit = covered[lo:hi] - start
        hit = hit[inside[hit]]
        in_any[hit] = True
        reached.append(ReachedNetwork(network, round(area.share_of(geom), 6), int(len(hit))))
    edge_positions, edge_inside = area.near_edge(points)
    order = np.argsort(points.ids[edge_positions], kind="stable")
    return Reach(
        networks=reached,
        adjacent=adjacent,
        inside_ids=np.sort(points.ids[positions]),
        in_network_ids=np.sort(points.ids[start + np.flatnonzero(in_any)]),
        edge_ids=points.ids[edge_positions][order],
        edge_inside=edge_inside[order],
    )


# recipients ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    """What the alert rules need of a member: ids, language and channels (no contact details)."""

    id: int
    network_id: int
    address_id: int
    language: str
    channels: tuple[str, ...]
    outside_area: bool = False


@dataclass(frozen=True)
class ContactRow:
    """A coordinator of a network (no contact details: whether an e-mail address is known)."""

    id: int
    network_id: int
    language: str
    has_email: bool


@dataclass(frozen=True)
class PlannedRecipient:
    """One delivery to make: who, through which network, by which channel, and why."""

    kind: str  # coordinator | member
    person_id: int
    network_id: int
    channel: str
    language: str
    reason: str


def members_reached(
    reached: Reach, members: Iterable[MemberRow], *, scope: str = "area"
) -> list[MemberRow]:
    """Members of reached networks whose address is inside the area (``scope="area"``) or who
    belong to a reached network (``scope="networks"``, members flagged outside their network's
    area left out)."""
    if scope not in DIRECT_SCOPES:
        raise InvalidInput(f"direct scope {scope!r} is not one of {', '.join(DIRECT_SCOPES)}")
    network_ids = set(reached.network_ids)
    chosen = []
    for member in members:
        if member.network_id not in network_ids:
            continue
        if scope == "area":
            if not _sorted_contains(reached.inside_ids, member.address_id):
                continue
        elif member.outside_area:
            continue
        chosen.append(member)
    return sorted(chosen, key=lambda m: m.id)


def plan_recipients(
    mode: str,
    reached: Reach,
    *,
    members: Iterable[MemberRow] = (),
    contacts: Iterable[ContactRow] = (),
    scope: str = "area",
) -> list[PlannedRecipient]:
    """The exact recipient list: coordinators by e-mail (relay) or members by their channels."""
    if mode not in MODES:
        raise InvalidInput(f"mode {mode!r} is not one of {', '.join(MODES)}")
    shares = {r.network.id: r.share_inside for r in reached.networks}
    planned: list[PlannedRecipient] = []
    if mode == "relay":
        for contact in sorted(contacts, key=lambda c: (c.network_id, c.id)):
            if contact.network_id in shares and contact.has_email:
                share = shares[contact.network_id]
                planned.append(
                    PlannedRecipient(
                        "coordinator",
                        contact.id,
                        contact.network_id,
                        "email",
                        _language(contact.language),
                        f"coordinator of network {contact.network_id} "
                        f"({share:.0%} of it inside the area)",
                    )
                )
        return planned
    for member in members_reached(reached, members, scope=scope):
        why = f"member of network {member.network_id} with address {member.address_id} " + (
            "inside the area" if scope == "area" else "in a network the area reaches"
        )
        for channel in member.channels:
            planned.append(
                PlannedRecipient(
                    "member",
                    member.id,
                    member.network_id,
                    channel,
                    _language(member.language),
                    why,
                )
            )
    return planned


def idempotency_key(alert_id: int, kind: str, person_id: int, channel: str) -> str:
    """The recipient's stable key: the same on every attempt, so receivers drop duplicates."""
    raw = f"bingeo-alert:{alert_id}:{kind}:{person_id}:{channel}".encode()
    return hashlib.sha256(raw).hexdigest()[:40]


# messages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsInfo:
    """Length of an SMS text: encoding, characters (septets or UTF-16 units) and segments."""

    encoding: str
    characters: int
    segments: int


def sms_info(text: str) -> SmsInfo:
    """GSM-7 (160 per SMS, 153 per part) when every character fits, else UCS-2 (70 / 67)."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        septets = sum(2 if c in GSM_EXTENSION else 1 for c in text)
        return SmsInfo("GSM-7", septets, 1 if septets <= 160 else math.ceil(septets / 153))
    units = len(text.encode("utf-16-le")) // 2
    return SmsInfo("UCS-2", units, 1 if units <= 70 else math.ceil(units / 67))


def message_for(messages: dict[str, str], language: str) -> tuple[str, str]:
    """(language used, text) for a recipient: their language, else nl, fr, de in that order."""
    if messages.get(language):
        return language, messages[language]
    for other in LANGUAGES:
        if messages.get(other):
            return other, messages[other]
    raise InvalidInput("the alert has no message")


def check_messages(messages: dict[str, str], headline: dict[str, str] | None = None) -> dict:
    """Message checks: which languages are given, SMS encoding, length and segments."""
    problems = []
    unknown = sorted(set(messages) - set(LANGUAGES))
    if unknown:
        problems.append(f"languages {unknown} are not one of {', '.join(LANGUAGES)}")
    if not any((messages.get(lang) or "").strip() for lang in LANGUAGES):
        problems.append("no message given in nl, fr or de")
    if problems:
        raise InvalidInput("message not valid: " + "; ".join(problems))
    report: dict = {"languages": {}, "warnings": []}
    for lang in LANGUAGES:
        used, _ = message_for(messages, lang)
        sms = sms_info(render_sms(messages, lang))
        report["languages"][lang] = {
            "given": bool((messages.get(lang) or "").strip()),
            "used": used,
            "sms": {
                "encoding": sms.encoding,
                "characters": sms.characters,
                "segments": sms.segments,
            },
        }
        if used != lang:
            report["warnings"].append(f"no {lang} text: {lang} recipients get the {used} text")
        if sms.segments > SMS_MAX_SEGMENTS:
            report["warnings"].append(
                f"{lang} SMS needs {sms.segments} segments (more than {SMS_MAX_SEGMENTS}); "
                "shorten the message"
            )
    return report


def render_sms(messages: dict[str, str], language: str) -> str:
    """The SMS (and voice) text for a recipient's language."""
    used, text = message_for(messages, language)
    return SMS_PREFIX[used].format(short=SHORT_NAMES[used]) + text.strip()


def render_email(
    kind: str,
    messages: dict[str, str],
    language: str,
    network_name: str,
    headline: dict[str, str] | None = None,
) -> tuple[str, str]:
    """(subject, body) of the e-mail to a coordinator (relay) or a member (direct)."""
    used, text = message_for(messages, language)
    title = (headline or {}).get(used) or DEFAULT_HEADLINES[used]
    template = RELAY_BODY if kind == "coordinator" else DIRECT_BODY
    body = template[used].format(
        official=OFFICIAL_NAMES[used], network=network_name, message=text.strip()
    )
    return f"[{SHORT_NAMES[used]} {network_name}] {title}", body


def estimate_cost(
    recipients: Iterable[PlannedRecipient],
    messages: dict[str, str],
    *,
    sms_cost_eur: float,
    voice_cost_eur: float,
) -> dict:
    """SMS segments and voice calls of a recipient list, and their price."""
    segments = {lang: sms_info(render_sms(messages, lang)).segments for lang in LANGUAGES}
    sms_messages = sms_segments = voice_calls = 0
    for recipient in recipients:
        if recipient.channel == "sms":
            sms_messages += 1
            sms_segments += segments[_language(recipient.language)]
        elif recipient.channel == "voice":
            voice_calls += 1
    sms_eur = round(sms_segments * sms_cost_eur, 2)
    voice_eur = round(voice_calls * voice_cost_eur, 2)
    return {
        "sms_messages": sms_messages,
        "sms_segments": sms_segments,
        "sms_eur": sms_eur,
        "voice_calls": voice_calls,
        "voice_eur": voice_eur,
        "total_eur": round(sms_eur + voice_eur, 2),
    }


# CAP 1.2 ---------------------------------------------------------------------------------------

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_LANGUAGE = {"nl": "nl-BE", "fr": "fr-BE", "de": "de-BE"}
CAP_EVENT = {"nl": "Politiebericht", "fr": "Message de la police", "de": "Polizeimeldung"}
# Element order of CAP 1.2 (OASIS standard, 2010): (name, min, max); None = unbounded.
CAP_ALERT_ORDER = (
    ("identifier", 1, 1),
    ("sender", 1, 1),
    ("sent", 1, 1),
    ("status", 1, 1),
    ("msgType", 1, 1),
    ("source", 0, 1),
    ("scope", 1, 1),
    ("restriction", 0, 1),
    ("addresses", 0, 1),
    ("code", 0, None),
    ("note", 0, 1),
    ("references", 0, 1),
    ("incidents", 0, 1),
    ("info", 0, None),
)
CAP_INFO_ORDER = (
    ("language", 0, 1),
    ("category", 1, None),
    ("event", 1, 1),
    ("responseType", 0, None),
    ("urgency", 1, 1),
    ("severity", 1, 1),
    ("certainty", 1, 1),
    ("audience", 0, 1),
    ("eventCode", 0, None),
    ("effective", 0, 1),
    ("onset", 0, 1),
    ("expires", 0, 1),
    ("senderName", 0, 1),
    ("headline", 0, 1),
    ("description", 0, 1),
    ("instruction", 0, 1),
    ("web", 0, 1),
    ("contact", 0, 1),
    ("parameter", 0, None),
    ("resource", 0, None),
    ("area", 0, None),
)
CAP_AREA_ORDER = (
    ("areaDesc", 1, 1),
    ("polygon", 0, None),
    ("circle", 0, None),
    ("geocode", 0, None),
    ("altitude", 0, 1),
    ("ceiling", 0, 1),
)
CAP_VALUES = {
    "status": {"Actual", "Exercise", "System", "Test", "Draft"},
    "msgType": {"Alert", "Update", "Cancel", "Ack", "Error"},
    "scope": {"Public", "Restricted", "Private"},
    "category": {
        "Geo",
        "Met",
        "Safety",
        "Security",
        "Rescue",
        "Fire",
        "Health",
        "Env",
        "Transport",
        "Infra",
        "CBRNE",
        "Other",
    },  # fmt: skip
    "urgency": {"Immediate", "Expected", "Future", "Past", "Unknown"},
    "severity": {"Extreme", "Severe", "Moderate", "Minor", "Unknown"},
    "certainty": {"Observed", "Likely", "Possible", "Unlikely", "Unknown"},
}
_CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
_PAIR = r"-?\d+(\.\d+)?,-?\d+(\.\d+)?"
_CAP_POLYGON = re.compile(rf"^{_PAIR}( {_PAIR}){{3,}}$")
_CAP_CIRCLE = re.compile(rf"^{_PAIR} \d+(\.\d+)?$")


@dataclass(frozen=True)
class CapAlert:
    """What the CAP export needs of a stored alert."""

    id: int
    sender: str
    sent: dt.datetime
    urgency: str
    area: AlertArea
    messages: dict[str, str]
    headline: dict[str, str] = field(default_factory=dict)
    sender_name: str = "Politie / Police / Polizei"
    cancelled: bool = False


def cap_xml(alert: CapAlert) -> str:
    """The alert as CAP 1.2 XML: one ``info`` per language given, the area as polygon or circle."""
    ET.register_namespace("", CAP_NS)
    root = ET.Element(f"{{{CAP_NS}}}alert")

    def add(parent: ET.Element, name: str, text: str) -> ET.Element:
        child = ET.SubElement(parent, f"{{{CAP_NS}}}{name}")
        child.text = text
        return child

    sent = alert.sent if alert.sent.tzinfo else alert.sent.replace(tzinfo=dt.UTC)
    add(root, "identifier", f"bingeo-alert-{alert.id}")
    add(root, "sender", alert.sender)
    add(root, "sent", sent.replace(microsecond=0).isoformat())
    add(root, "status", "Actual")
    add(root, "msgType", "Alert")
    add(root, "scope", "Restricted")
    add(root, "restriction", "Members and coordinators of BIN / PLP / NIN networks")
    if alert.cancelled:
        add(root, "note", "Cancelled before dispatch")
    for lang in LANGUAGES:
        text = (alert.messages.get(lang) or "").strip()
        if not text:
            continue
        info = ET.SubElement(root, f"{{{CAP_NS}}}info")
        add(info, "language", CAP_LANGUAGE[lang])
        add(info, "category", "Security")
        add(info, "event", CAP_EVENT[lang])
        add(info, "urgency", alert.urgency.capitalize())
        add(info, "severity", "Unknown")
        add(info, "certainty", "Unknown")
        add(info, "senderName", alert.sender_name)
        add(info, "headline", alert.headline.get(lang) or DEFAULT_HEADLINES[lang])
        add(info, "description", text)
        area = ET.SubElement(info, f"{{{CAP_NS}}}area")
        add(area, "areaDesc", alert.area.description)
        if alert.area.is_circle:
            lon, lat = storage_to_geojson(alert.area.centre_point)["coordinates"]
            add(area, "circle", f"{lat:.6f},{lon:.6f} {alert.area.radius_m / 1000:.3f}")
        else:
            for polygon in storage_to_geojson(alert.area.polygon, precision=6)["coordinates"]:
                # CAP polygons have no holes: the outer ring is given.
                ring = " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in polygon[0])
                add(area, "polygon", ring)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def check_cap(xml: str) -> list[str]:
    """Problems of a CAP 1.2 document against the standard's element order, values and syntax."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"not XML: {exc}"]
    problems: list[str] = []
    if root.tag != f"{{{CAP_NS}}}alert":
        return [f"root element is {root.tag}, not {{{CAP_NS}}}alert"]
    _check_sequence(root, CAP_ALERT_ORDER, "alert", problems)
    for info in root.findall(f"{{{CAP_NS}}}info"):
        _check_sequence(info, CAP_INFO_ORDER, "info", problems)
        for area in info.findall(f"{{{CAP_NS}}}area"):
            _check_sequence(area, CAP_AREA_ORDER, "area", problems)
            for polygon in area.findall(f"{{{CAP_NS}}}polygon"):
                text = (polygon.text or "").strip()
                pairs = text.split(" ")
                if not _CAP_POLYGON.match(text) or pairs[0] != pairs[-1]:
                    problems.append("polygon: needs 4 or more closed 'lat,lon' pairs")
            for circle in area.findall(f"{{{CAP_NS}}}circle"):
                if not _CAP_CIRCLE.match((circle.text or "").strip()):
                    problems.append("circle: must be 'lat,lon radius_km'")
    for element in root.iter():
        name = element.tag.split("}")[-1]
        if name in CAP_VALUES and (element.text or "") not in CAP_VALUES[name]:
            problems.append(f"{name}: {element.text!r} is not a CAP 1.2 value")
        if name in ("sent", "effective", "onset", "expires") and not _CAP_TIME.match(
            element.text or ""
        ):
            problems.append(f"{name}: {element.text!r} is not a CAP date-time")
    return problems


# private helpers -------------------------------------------------------------------------------


def _radius(radius_m: float) -> float:
    try:
        radius_m = float(radius_m)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("radius_m must be a number of metres") from exc
    if not math.isfinite(radius_m) or not MIN_RADIUS_M <= radius_m <= MAX_RADIUS_M:
        raise InvalidInput(
            f"radius_m must lie between {MIN_RADIUS_M:g} and {MAX_RADIUS_M:g} metres"
        )
    return radius_m


def _language(language: str) -> str:
    return language if language in LANGUAGES else "nl"


def _covered(geom: BaseGeometry, points: AddressPoints) -> np.ndarray:
    """Positions in ``points`` (increasing) that ``geom`` covers: the matching rule."""
    box = points.candidates(geom.bounds)
    if len(box) == 0:
        return box
    return box[shapely.intersects_xy(geom, points.x[box], points.y[box])]


def _positions_of(points: AddressPoints, ids: Sequence[int]) -> np.ndarray:
    if not len(ids):
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.isin(points.ids, np.asarray(list(ids), dtype=np.int64)))


def _sorted_contains(sorted_ids: np.ndarray, value: int) -> bool:
    i = int(np.searchsorted(sorted_ids, value))
    return i < len(sorted_ids) and int(sorted_ids[i]) == value


def _check_sequence(element: ET.Element, order: tuple, label: str, problems: list[str]) -> None:
    names = [child.tag.split("}")[-1] for child in element]
    i = 0
    for name, low, high in order:
        count = 0
        while i < len(names) and names[i] == name:
            count += 1
            i += 1
        if count < low:
            problems.append(f"{label}: missing {name}")
        if high is not None and count > high:
            problems.append(f"{label}: {name} more than {high} times")
    if i < len(names):
        problems.append(f"{label}: unexpected or misplaced {names[i]}")
