"""Networks (BIN / BIN-Z): kinds, lifecycle states and reading network areas from files."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np

from bingeo.areas import Rejection
from bingeo.errors import BinGeoError, ContactDetailsInPublicText, InvalidInput
from bingeo.files import pick_column, read_geofile, text_or_none
from bingeo.geometry import geometry_outside_belgium, polygonal, to_storage
from bingeo.vocabulary import AreaLevel, NetworkKind, NetworkStatus

CODE_COLUMNS = ("code", "network_code", "bin_id", "id")
NAME_COLUMNS = ("name", "bin_name", "naam")
KIND_COLUMNS = ("kind", "bin_type", "type")
STATUS_COLUMNS = ("status", "lifecycle_status", "state")
JOIN_COLUMNS = ("how_to_join", "join_info", "aansluiten")
# A file's municipality or police zone columns are not read: where a network lies is derived
# from its area (bingeo.db.networks.refresh_places).
FIELDS = ("code", "name", "kind", "status", "how_to_join")
# Two areas sharing less than this, or a strip narrower on average than MIN_SHARED_WIDTH_M, and
# no address, only touch. Floating-point noise along a shared boundary leaves slivers of 1e-9
# m²; an area sent as GeoJSON (7 decimals, about 1 cm) leaves strips of about 1 cm along a
# shared boundary, more than 1 m² for a boundary of a few hundred metres.
MIN_SHARED_M2 = 1.0
MIN_SHARED_WIDTH_M = 0.5
# The reference levels that say where a network lies.
PLACE_LEVELS = (AreaLevel.municipality, AreaLevel.police_zone)
# "How to join" is shown to anyone: no e-mail address (also written "name [at] domain.be") and
# no Belgian phone number in the ways people write them: 0475 12 34 56, 0475/12.34.56,
# 02 123 45 67, 016 12 34 56, +32 475 12 34 56, 0032 (0)2 123 45 67, 0475123456. A date
# (01.02.2024) or a house number has too few digits in these groups to be taken for one.
_EMAIL = re.compile(
    r"[\w.+-]+\s*(?:@|\[at\]|\(at\))\s*[\w-]+(?:\s*(?:\.|\[dot\]|\(dot\))\s*[\w-]+)+",
    re.IGNORECASE,
)
_S = r"[ ./-]?"
_SUBSCRIBER = (
    rf"(?:4\d{{2}}{_S}\d{{2}}{_S}\d{{2}}{_S}\d{{2}}"  # mobile: 4xx xx xx xx
    rf"|\d{_S}\d{{3}}{_S}\d{{2}}{_S}\d{{2}}"  # one-digit zone: 2 123 45 67
    rf"|\d{{2}}{_S}\d{{2}}{_S}\d{{2}}{_S}\d{{2}})"  # two-digit zone: 16 12 34 56
)
_PHONE = re.compile(rf"(?<![\d+])(?:(?:\+|00)\s?32\s?(?:\(0\)\s?)?|0){_SUBSCRIBER}(?!\d)")


def check_public_join_text(text: str | None) -> str | None:
    """``text`` stripped (None when blank); refused when it holds contact details."""
    text = (text or "").strip() or None
    if text is None:
        return None
    found = [f"e-mail address {m.group(0)!r}" for m in _EMAIL.finditer(text)]
    found += [f"phone number {m.group(0).strip()!r}" for m in _PHONE.finditer(text)]
    if found:
        raise ContactDetailsInPublicText(
            "how_to_join is shown to the public and may not hold personal contact details; "
            f"found {', '.join(found)}: say how to apply instead (the join form, the municipality)"
        )
    return text


# Languages of the generated "how to join" text; Dutch when the resident's is neither.
JOIN_LANGUAGES = ("nl", "fr")
# Each phrase in the order of JOIN_LANGUAGES (nl, fr); ``{}`` is a name or a code.
_JOIN_PHRASES: dict[str, tuple] = {
    "label": (("BIN", "BIN-Z"), ("PLP", "PLP-I")),
    "who": (
        ("bewoners", "zelfstandigen en ondernemers"),
        ("aux habitants", "aux indépendants et entreprises"),
    ),
    "town": ("de gemeente {}", "la commune de {}"),
    "town_code": ("de gemeente met NIS-code {}", "la commune de code INS {}"),
    "your_town": ("uw gemeente", "votre commune"),
    "zone_code": ("politiezone {}", "zone de police {}"),
    "police": ("de lokale politie ({})", "la police locale ({})"),
    "your_police": ("uw lokale politie", "votre police locale"),
    "text": (
        "{label} '{name}' staat open voor {who} in zijn gebied. Wilt u aansluiten, neem dan "
        "contact op met de dienst preventie van {town} of met de wijkagent van {police}: zij "
        "brengen u in contact met de coördinator.",
        "Le {label} « {name} » est ouvert {who} de son périmètre. Pour y adhérer, contactez le "
        "service prévention de {town} ou l'agent de quartier de {police} : ils vous mettront en "
        "relation avec le coordinateur.",
    ),
}


@dataclass
class NetworkBatch:
    """Networks read from one file, in storage CRS."""

    frame: gpd.GeoDataFrame
    repaired: list[Rejection] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    read: int = 0


def parse_kind(value: object) -> NetworkKind:
    """``BIN`` or ``BIN-Z`` from the ways files write them (BINZ, BIN Z, bin-z)."""
    text = str(value or "").strip().upper().replace(" ", "-").replace("_", "-")
    if text in ("BINZ", "BIN-Z"):
        return NetworkKind.BIN_Z
    if text == "BIN":
        return NetworkKind.BIN
    raise InvalidInput(f"unknown network kind {value!r}; use BIN or BIN-Z")


def parse_status(value: object, *, default: NetworkStatus = NetworkStatus.active) -> NetworkStatus:
    """A lifecycle status from its name (case and spaces ignored); ``default`` when empty."""
    text = str(value or "").strip().lower().replace(" ", "_").replace("-", "_")
    if not text or text == "nan":
        return default
    try:
        return NetworkStatus(text)
    except ValueError:
        allowed = ", ".join(s.value for s in NetworkStatus)
        raise InvalidInput(f"unknown network status {value!r}; use one of {allowed}") from None


def shares_area(
    shared_m2: object,
    addresses: object,
    *,
    shared_perimeter_m: object = None,
    min_m2: float = MIN_SHARED_M2,
) -> np.ndarray:
    """Whether two areas really share something (elementwise): at least one address, or at least
    ``min_m2`` in a part that is on average ``MIN_SHARED_WIDTH_M`` wide or more (the width is
    twice the area over the perimeter of the shared part; without a perimeter, area alone).

    The one rule for a network reached by an alert, overlapping a proposal or another network;
    anything less only touches.
    """
    area = np.asarray(shared_m2, dtype=float)
    wide = np.ones(area.shape, dtype=bool)
    if shared_perimeter_m is not None:
        perimeter = np.asarray(shared_perimeter_m, dtype=float)
        wide = 2 * area >= MIN_SHARED_WIDTH_M * perimeter
    return ((area >= min_m2) & wide) | (np.asarray(addresses) > 0)


def read_networks(
    path: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    default_status: NetworkStatus = NetworkStatus.active,
) -> NetworkBatch:
    """Read network areas with their name, kind and status from GeoJSON or GeoPackage."""
    raw = to_storage(read_geofile(path, layer=layer), crs=crs, source=str(path))
    columns = list(raw.columns)
    pick = {
        "code": pick_column(columns, CODE_COLUMNS, None),
        "name": pick_column(columns, NAME_COLUMNS, None),
        "kind": pick_column(columns, KIND_COLUMNS, None),
        "status": pick_column(columns, STATUS_COLUMNS, None),
        "how_to_join": pick_column(columns, JOIN_COLUMNS, None),
    }
    for required in ("name", "kind"):
        if pick[required] is None:
            raise InvalidInput(f"{path}: required property {required!r} missing")
    batch = NetworkBatch(frame=gpd.GeoDataFrame(), read=len(raw))
    rows = []
    for position, (_, feature) in enumerate(raw.iterrows(), start=1):
        label = f"{path}: feature {position}"
        try:
            name = text_or_none(feature[pick["name"]])
            if not name:
                raise InvalidInput(f"{label}: empty name")
            label = f"{label} ({name})"
            kind = parse_kind(feature[pick["kind"]])
            status = parse_status(
                feature[pick["status"]] if pick["status"] else None, default=default_status
            )
            geom, reason = polygonal(feature.geometry, label=label)
            if geometry_outside_belgium(geom):
                raise InvalidInput(f"{label}: coordinates outside Belgium after reprojection")
            join = (
                check_public_join_text(text_or_none(feature[pick["how_to_join"]]))
                if pick["how_to_join"]
                else None
            )
        except BinGeoError as exc:
            detail = exc.detail if exc.detail.startswith(str(path)) else f"{label}: {exc.detail}"
            batch.rejected.append(Rejection(position, detail))
            continue
        if reason:
            batch.repaired.append(Rejection(position, f"{label}: {reason}"))
        code = text_or_none(feature[pick["code"]]) if pick["code"] else None
        rows.append(
            {
                "feature": position,
                "code": code or _derived_code(name, geom.wkb),
                "name": name,
                "kind": kind.value,
                "status": status.value,
                "how_to_join": join,
                "geometry": geom,
            }
        )
    frame = gpd.GeoDataFrame(
        rows, columns=["feature", *FIELDS, "geometry"], geometry="geometry", crs=31370
    )
    duplicated = frame["code"].duplicated(keep="first")
    for position, code in frame.loc[duplicated, ["feature", "code"]].itertuples(index=False):
        batch.rejected.append(
            Rejection(int(position), f"{path}: feature {position}: network code {code} repeated")
        )
    batch.rejected.sort(key=lambda rejection: rejection.row)
    batch.frame = frame.loc[~duplicated, [*FIELDS, "geometry"]].reset_index(drop=True)
    return batch


def join_language(accept_language: str | None) -> str:
    """The first of ``JOIN_LANGUAGES`` an ``Accept-Language`` value (or a code) asks for."""
    ranked = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in JOIN_LANGUAGES and weight > 0:
            ranked.append((-weight, position, language))
    return min(ranked)[2] if ranked else JOIN_LANGUAGES[0]


def join_text(
    language: str,
    *,
    name: str,
    kind: NetworkKind,
    municipality: str | None = None,
    nis_code: str | None = None,
    police_zone: str | None = None,
    police_zone_code: str | None = None,
) -> str:
    """How a resident (or a business, for a BIN-Z) joins a network: the public bodies to contact.

    Places are named by ``municipality`` / ``police_zone`` (names), else by their codes. No
    coordinator is ever named: their name, phone and e-mail are personal data.
    """
    position = JOIN_LANGUAGES.index(language) if language in JOIN_LANGUAGES else 0
    words = {key: phrases[position] for key, phrases in _JOIN_PHRASES.items()}
    business = int(kind == NetworkKind.BIN_Z)
    if municipality:
        town = words["town"].format(municipality)
    else:
        town = words["town_code"].format(nis_code) if nis_code else words["your_town"]
    zone = police_zone or (words["zone_code"].format(police_zone_code) if police_zone_code else "")
    police = words["police"].format(zone) if zone else words["your_police"]
    return words["text"].format(
        label=words["label"][business],
        who=words["who"][business],
        name=name,
        town=town,
        police=police,
    )


def _derived_code(name: str, wkb: bytes) -> str:
    # Files without an id still upsert: the same name and area give the same code.
    return "N-" + hashlib.sha1(name.encode() + wkb).hexdigest()[:10]
