"""Network areas from published street lists.

Municipalities publish BINs as street lists ("Koning Albertlaan (bovenkant)", "van huisnummer 1
t.e.m. 71", "alle straten van de deelgemeente Opvelp"). This module resolves the streets (fuzzy),
reads the qualifiers it can, selects the addresses and derives a polygon that covers exactly those
addresses and no other located address of the municipality: Voronoi cells of the address points,
united, clipped to the municipality and simplified only as far as no address changes side.
"""

from __future__ import annotations

import csv
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPoint, MultiPolygon
from shapely.geometry.base import BaseGeometry

from bingeo.errors import InvalidGeometry, InvalidInput
from bingeo.files import pick_column, text_or_none
from bingeo.geometry import polygonal

NETWORK_COLUMNS = ("bin_id", "network", "network_id", "network_code", "code")
MUNICIPALITY_COLUMNS = ("municipality", "gemeente", "nis_code")
STREET_COLUMNS = ("street_as_published", "street", "straat")
QUALIFIER_COLUMNS = ("qualifier_as_published", "qualifier", "opmerking")
COVERAGE_COLUMNS = ("coverage_text", "coverage", "rule")
NAME_COLUMNS = ("bin_name", "name", "naam")
KIND_COLUMNS = ("bin_type", "kind", "type")
SURE = 0.95  # street matches at or above this are taken without comment
LIKELY = 0.85  # between LIKELY and SURE: taken, and reported as a fuzzy match
SIMPLIFY_TOLERANCES_M = (8.0, 4.0, 2.0, 1.0, 0.5)


@dataclass(frozen=True)
class StreetItem:
    """One row of a published street list."""

    network: str
    municipality: str
    street: str | None
    qualifier: str | None
    row: int


@dataclass(frozen=True)
class NetworkInfo:
    """Name, kind and coverage text of a published network (from a networks CSV)."""

    code: str
    name: str | None = None
    kind: str | None = None
    municipality: str | None = None
    coverage: str | None = None


@dataclass(frozen=True)
class NumberRule:
    """House numbers kept by a qualifier: an inclusive range and/or one side of the street."""

    low: int | None = None
    high: int | None = None
    parity: int | None = None  # 0 even, 1 odd

    def keeps(self, numbers: np.ndarray) -> np.ndarray:
        """Mask of the numeric house numbers (NaN for none) this rule keeps."""
        keep = ~np.isnan(numbers)
        if self.low is not None:
            keep &= numbers >= self.low
        if self.high is not None:
            keep &= numbers <= self.high
        if self.parity is not None:
            keep &= np.mod(numbers, 2) == self.parity
        return keep


@dataclass(frozen=True)
class AreaRule:
    """A rule like "alle straten van de deelgemeente Opvelp": every address in a reference area."""

    level: str  # deelgemeente or wijk
    name: str


@dataclass
class Finding:
    """Something the user must know about the derivation: never guessed silently."""

    network: str
    kind: str  # unresolved_street, fuzzy_street, unread_qualifier, unresolved_rule, ...
    message: str
    row: int | None = None
    candidates: list[str] = field(default_factory=list)


@dataclass
class DerivedArea:
    """The outcome for one network."""

    network: str
    address_ids: np.ndarray
    area: MultiPolygon | None
    tolerance_m: float | None = None


def read_street_list(path: Path) -> list[StreetItem]:
    """The rows of a published street list CSV (network, municipality, street, qualifier)."""
    frame = _read_csv(path)
    columns = list(frame.columns)
    network = _required(path, columns, NETWORK_COLUMNS, "network id")
    municipality = _required(path, columns, MUNICIPALITY_COLUMNS, "municipality")
    street = _required(path, columns, STREET_COLUMNS, "street")
    qualifier = pick_column(columns, QUALIFIER_COLUMNS, None)
    items = []
    for position, row in enumerate(frame.itertuples(index=False), start=2):
        values = row._asdict()
        code = text_or_none(values[network])
        place = text_or_none(values[municipality])
        if not code or not place:
            raise InvalidInput(f"{path}: row {position}: network id and municipality are required")
        items.append(
            StreetItem(
                network=code,
                municipality=place,
                street=text_or_none(values[street]),
                qualifier=text_or_none(values[qualifier]) if qualifier else None,
                row=position,
            )
        )
    return items


def read_network_list(path: Path) -> dict[str, NetworkInfo]:
    """Published networks (id, name, kind, municipality, coverage text) by id."""
    frame = _read_csv(path)
    columns = list(frame.columns)
    network = _required(path, columns, NETWORK_COLUMNS, "network id")
    picked = {
        "name": pick_column(columns, NAME_COLUMNS, None),
        "kind": pick_column(columns, KIND_COLUMNS, None),
        "municipality": pick_column(columns, MUNICIPALITY_COLUMNS, None),
        "coverage": pick_column(columns, COVERAGE_COLUMNS, None),
    }
    infos = {}
    for row in frame.itertuples(index=False):
        values = row._asdict()
        code = text_or_none(values[network])
        if not code:
            continue
        infos[code] = NetworkInfo(
            code=code, **{k: text_or_none(values[c]) if c else None for k, c in picked.items()}
        )
    return infos


def street_key(name: str) -> str:
    """A street name reduced to what spelling variants share: lower case, no accents or spaces."""
    text = unicodedata.normalize("NFKD", name.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^0-9a-z]", "", text)


def resolve_street(published: str, streets: list[str]) -> tuple[str | None, float, list[str]]:
    """The register's street for a published name: (street or None, confidence, candidates)."""
    keys: dict[str, list[str]] = {}
    for street in streets:
        keys.setdefault(street_key(street), []).append(street)
    wanted = street_key(published)
    if published in streets:
        return published, 1.0, []
    if wanted in keys and len(keys[wanted]) == 1:
        return keys[wanted][0], 0.98, []
    scored = sorted(
        ((difflib.SequenceMatcher(None, wanted, key).ratio(), key) for key in keys),
        reverse=True,
    )
    candidates = [keys[key][0] for _, key in scored[:3]]
    if not scored or scored[0][0] < LIKELY:
        return None, scored[0][0] if scored else 0.0, candidates
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None, scored[0][0], candidates  # a tie is not a match
    return keys[scored[0][1]][0], round(scored[0][0], 3), candidates


def parse_qualifier(text: str | None) -> NumberRule | AreaRule | None:
    """The rule a qualifier states, None for "the whole street", or raise ``ValueError``."""
    if text is None or not text.strip():
        return None
    plain = street_key_spaces(text)
    area = re.search(r"(?:alle straten|omvat).*?\b(deelgemeente|wijk)\s+(.+)$", plain)
    if area:
        return AreaRule(level=area.group(1), name=area.group(2).strip())
    parity = None
    if re.search(r"\b(onpare|oneven|impairs?)\b", plain):
        parity = 1
    elif re.search(r"\b(pare|even|pairs?)\b", plain):
        parity = 0
    number = r"(\d+)\s*[a-z]?"
    span = re.search(
        rf"(?:van\s+)?(?:huis)?(?:nummers?|nrs?|nr)?\s*{number}\s*"
        rf"(?:t\s*e\s*m|tem|tot en met|tot|-|to|a|au)\s*(?:huis)?(?:nummers?|nrs?|nr)?\s*{number}",
        plain,
    )
    low = high = None
    if span:
        low, high = sorted((int(span.group(1)), int(span.group(2))))
    else:
        start = re.search(rf"\b(?:vanaf|van)\s+(?:huis)?(?:nummers?|nr)?\s*{number}", plain)
        end = re.search(
            rf"\b(?:tot en met|tem|tot|t e m)\s+(?:huis)?(?:nummers?|nr)?\s*{number}", plain
        )
        low = int(start.group(1)) if start else None
        high = int(end.group(1)) if end else None
    if low is None and high is None and parity is None:
        raise ValueError(f"qualifier not understood: {text!r}")
    leftover = re.sub(
        r"\b(van|vanaf|tot|en|met|t|e|m|tem|huisnummers?|nummers?|nrs?|nr|de|het|"
        r"onpare|oneven|pare|even|kant|zijde|enkel|alleen|\d+\s*[a-z]?)\b|-",
        " ",
        plain,
    ).strip()
    if leftover:
        raise ValueError(f"qualifier only partly understood ({leftover!r}): {text!r}")
    return NumberRule(low=low, high=high, parity=parity)


def street_key_spaces(text: str) -> str:
    """Lower case, no accents, punctuation as spaces (for reading qualifiers)."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^0-9a-z-]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def house_number_values(numbers: pd.Series) -> np.ndarray:
    """The leading integer of each house number ("12A" -> 12, "12 bis" -> 12), NaN for none."""
    extracted = numbers.fillna("").astype(str).str.extract(r"^\s*(\d+)")[0]
    return pd.to_numeric(extracted, errors="coerce").to_numpy(dtype=float)


def derive_areas(
    xy: np.ndarray,
    selections: dict[str, np.ndarray],
    municipality: BaseGeometry,
    *,
    tolerances_m: tuple[float, ...] = SIMPLIFY_TOLERANCES_M,
) -> dict[str, tuple[MultiPolygon | None, float | None]]:
    """For each network, the area covering its selected points and no other point.

    ``xy`` holds every located address of the municipality (Lambert 72) and ``selections`` a mask
    per network. The Voronoi cells of the address positions are grouped by the set of networks
    that select them; these pieces tile the municipality, so they are simplified together as one
    coverage (neighbouring networks keep a shared edge, no gap or sliver overlap appears). The
    largest tolerance that keeps every address on its side is used (0: not simplified).
    """
    codes = [code for code, mask in selections.items() if mask.any()]
    result: dict[str, tuple[MultiPolygon | None, float | None]] = {
        code: (None, None) for code in selections if code not in codes
    }
    if not codes:
        return result
    sites, site_of = np.unique(np.round(xy, 3), axis=0, return_inverse=True)
    site_of = site_of.reshape(-1)
    membership = np.zeros((len(sites), len(codes)), dtype=bool)
    for column, code in enumerate(codes):
        membership[site_of[selections[code]], column] = True
    signatures, piece_of_site = np.unique(membership, axis=0, return_inverse=True)
    piece_of_site = piece_of_site.reshape(-1)
    cells = _voronoi_cells(sites, municipality)
    pieces = np.array(
        [
            shapely.intersection(
                shapely.coverage_union_all(cells[piece_of_site == p]), municipality
            )
            for p in range(len(signatures))
        ],
        dtype=object,
    )
    for tolerance in (*tolerances_m, 0.0):
        simplified = shapely.coverage_simplify(pieces, tolerance) if tolerance else pieces
        areas = {
            code: _polygonal(shapely.union_all(simplified[signatures[:, column]]))
            for column, code in enumerate(codes)
        }
        exact = all(
            areas[code] is not None
            and _separates(areas[code], xy[mask], xy[~mask & ~_shares_site(mask, site_of)])
            for code, mask in ((c, selections[c]) for c in codes)
        )
        if exact or not tolerance:
            result.update({code: (areas[code], tolerance) for code in codes})
            return result
    return result


def _shares_site(mask: np.ndarray, site_of: np.ndarray) -> np.ndarray:
    # Addresses at the very position of a selected one cannot be kept out of its area.
    chosen_sites = np.zeros(site_of.max() + 1, dtype=bool)
    chosen_sites[site_of[mask]] = True
    return chosen_sites[site_of]


def separation_errors(area: BaseGeometry, xy: np.ndarray, selected: np.ndarray) -> tuple[int, int]:
    """(selected points outside ``area``, other points inside it): both 0 for an exact area."""
    shapely.prepare(area)
    inside = shapely.intersects_xy(area, xy[:, 0], xy[:, 1])
    return int((selected & ~inside).sum()), int((~selected & inside).sum())


def _voronoi_cells(sites: np.ndarray, municipality: BaseGeometry) -> np.ndarray:
    envelope = shapely.box(*municipality.buffer(1000).bounds)
    if len(sites) == 1:
        return np.array([envelope])
    regions = shapely.voronoi_polygons(MultiPoint(sites), extend_to=envelope, ordered=True)
    return np.array(list(regions.geoms), dtype=object)


def _separates(area: BaseGeometry, inside: np.ndarray, outside: np.ndarray) -> bool:
    shapely.prepare(area)
    if len(inside) and not shapely.intersects_xy(area, inside[:, 0], inside[:, 1]).all():
        return False
    return not (len(outside) and shapely.intersects_xy(area, outside[:, 0], outside[:, 1]).any())


def _polygonal(geom: BaseGeometry | None) -> MultiPolygon | None:
    try:
        return polygonal(geom, label="derived area")[0]
    except InvalidGeometry:
        return None


def _read_csv(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{path}: not a readable CSV file ({exc})") from exc
    if frame.empty:
        raise InvalidInput(f"{path}: the file has no rows")
    return frame


def _required(path: Path, columns: list[str], candidates: tuple[str, ...], what: str) -> str:
    column = pick_column(columns, candidates, None)
    if column is None:
        raise InvalidInput(f"{path}: required column {what!r} missing (looked for {candidates})")
    return column
