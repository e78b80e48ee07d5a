"""Deriving (and storing) network areas from published street lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine

from bingeo.db import streetlists as repo
from bingeo.db.models import AreaLevel, NetworkStatus
from bingeo.networks import parse_kind
from bingeo.services.networks import store_networks
from bingeo.streetlists import SURE as SURE_MATCH
from bingeo.streetlists import (
    AreaRule,
    DerivedArea,
    Finding,
    NetworkInfo,
    StreetItem,
    derive_areas,
    house_number_values,
    parse_qualifier,
    read_network_list,
    read_street_list,
    resolve_street,
    separation_errors,
)

Progress = Callable[[str], None]


@dataclass
class StreetListResult:
    """Derived areas, what was found on the way, and what was stored."""

    areas: list[DerivedArea] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    infos: dict[str, NetworkInfo] = field(default_factory=dict)
    municipality_of: dict[str, str] = field(default_factory=dict)
    stored: int = 0
    updated: int = 0

    def frame(self, *, status: NetworkStatus = NetworkStatus.active) -> gpd.GeoDataFrame:
        """The derived networks as a GeoDataFrame (EPSG:31370) in the network import's columns."""
        rows = []
        for derived in self.areas:
            if derived.area is None:
                continue
            info = self.infos.get(derived.network, NetworkInfo(code=derived.network))
            rows.append(
                {
                    "code": derived.network,
                    "name": info.name or derived.network,
                    "kind": parse_kind(info.kind or "BIN").value,
                    "status": status.value,
                    "nis_code": self.municipality_of.get(derived.network),
                    "police_zone_code": None,
                    "addresses": len(derived.address_ids),
                    "geometry": derived.area,
                }
            )
        columns = ["code", "name", "kind", "status", "nis_code", "police_zone_code", "addresses"]
        return gpd.GeoDataFrame(
            rows, columns=[*columns, "geometry"], geometry="geometry", crs=31370
        )

    def as_dict(self) -> dict[str, object]:
        """Counts and findings as plain data (no geometry)."""
        return {
            "networks": [
                {
                    "code": a.network,
                    "addresses": int(len(a.address_ids)),
                    "area_m2": round(a.area.area, 1) if a.area is not None else None,
                    "simplify_tolerance_m": a.tolerance_m,
                }
                for a in self.areas
            ],
            "findings": [
                {
                    "network": f.network,
                    "kind": f.kind,
                    "message": f.message,
                    "row": f.row,
                    "candidates": f.candidates,
                }
                for f in self.findings
            ],
            "stored": self.stored,
            "updated": self.updated,
        }


def derive_from_street_list(
    engine: Engine,
    streets_csv: Path,
    *,
    networks_csv: Path | None = None,
    only: set[str] | None = None,
    progress: Progress | None = None,
) -> StreetListResult:
    """Derive the area of every network of a street list (no side effect)."""
    items = read_street_list(streets_csv)
    infos = read_network_list(networks_csv) if networks_csv else {}
    result = StreetListResult(infos=infos)
    by_network: dict[str, list[StreetItem]] = {}
    for item in items:
        by_network.setdefault(item.network, []).append(item)
    for code, info in infos.items():
        if code not in by_network and info.coverage and info.municipality:
            rule_item = StreetItem(code, info.municipality, None, info.coverage, row=0)
            by_network[code] = [rule_item]
    if only:
        by_network = {k: v for k, v in by_network.items() if k in only}
    municipalities = sorted({i.municipality for group in by_network.values() for i in group})
    with engine.connect() as connection:
        for name in municipalities:
            if progress:
                progress(f"deriving networks of {name}")
            codes = repo.municipality_codes(connection, name)
            networks = {k: v for k, v in by_network.items() if v[0].municipality == name}
            if len(codes) != 1:
                for code in networks:
                    result.findings.append(
                        Finding(
                            code,
                            "unknown_municipality",
                            f"municipality {name!r} is {'ambiguous' if codes else 'unknown'}",
                        )
                    )
                    result.areas.append(DerivedArea(code, np.array([], dtype=np.int64), None))
                continue
            _derive_municipality(connection, codes[0], networks, result)
    _report_overlaps(result)
    return result


def store_derived(
    engine: Engine,
    result: StreetListResult,
    *,
    status: NetworkStatus = NetworkStatus.active,
    changed_by: str | None = "street list",
) -> StreetListResult:
    """Upsert the derived networks (one transaction) and count what changed."""
    frame = result.frame(status=status)
    with engine.begin() as connection:
        result.stored, result.updated = store_networks(
            connection, frame, changed_by=changed_by, reason="derived from a street list"
        )
    return result


def _derive_municipality(
    connection, nis_code: str, networks: dict[str, list[StreetItem]], result: StreetListResult
) -> None:
    addresses = repo.municipality_addresses(connection, nis_code)
    located = addresses.dropna(subset=["x", "y"]).reset_index(drop=True)
    xy = located[["x", "y"]].to_numpy()
    numbers = house_number_values(located["house_number"])
    streets = sorted(addresses["street"].dropna().unique().tolist())
    outline = repo.area_geometry(connection, AreaLevel.municipality, code=nis_code)
    if outline:
        municipality = outline[0][2]
    else:
        municipality = shapely.MultiPoint(xy).convex_hull.buffer(200)
        for code in networks:
            result.findings.append(
                Finding(
                    code,
                    "no_municipality_polygon",
                    f"municipality {nis_code} has no polygon loaded; clipped to its addresses",
                )
            )
    selections = {}
    for code, items in networks.items():
        result.municipality_of[code] = nis_code
        selected = np.zeros(len(located), dtype=bool)
        for item in items:
            selected |= _select(connection, item, located, xy, numbers, streets, nis_code, result)
        selections[code] = selected
    derived = derive_areas(xy, selections, municipality)
    for code, selected in selections.items():
        unlocated = addresses[
            addresses["x"].isna()
            & addresses["street"].isin(located.loc[selected, "street"].unique())
        ]
        if len(unlocated):
            result.findings.append(
                Finding(
                    code,
                    "unlocated_addresses",
                    f"{len(unlocated)} addresses of the listed streets have no position "
                    "and cannot be placed in the area",
                )
            )
        area, tolerance = derived[code]
        ids = located.loc[selected, "id"].to_numpy(dtype=np.int64)
        result.areas.append(DerivedArea(code, ids, area, tolerance))
        if area is None:
            result.findings.append(Finding(code, "empty", "no located address selected: no area"))
            continue
        missing, extra = separation_errors(area, xy, selected)
        if missing or extra:
            result.findings.append(
                Finding(
                    code,
                    "inexact_area",
                    f"{missing} selected addresses lie outside the area (outside the "
                    f"municipality or sharing a position) and {extra} other addresses "
                    "share a position with selected ones",
                )
            )


def _select(
    connection, item: StreetItem, located, xy, numbers, streets, nis_code, result: StreetListResult
) -> np.ndarray:
    none = np.zeros(len(located), dtype=bool)
    try:
        rule = parse_qualifier(item.qualifier)
    except ValueError as exc:
        if item.street is None:
            result.findings.append(
                Finding(
                    item.network,
                    "unresolved_rule",
                    f"coverage not understood: {item.qualifier!r}",
                    row=item.row,
                )
            )
            return none
        rule = None
        result.findings.append(
            Finding(
                item.network,
                "unread_qualifier",
                f"{exc}; the whole street {item.street!r} is included",
                row=item.row,
            )
        )
    if isinstance(rule, AreaRule):
        return _select_area(connection, item, rule, xy, nis_code, result)
    if item.street is None:
        result.findings.append(
            Finding(
                item.network,
                "unresolved_rule",
                f"no street and no rule read in row {item.row}",
                row=item.row,
            )
        )
        return none
    street, confidence, candidates = resolve_street(item.street, streets)
    if street is None:
        result.findings.append(
            Finding(
                item.network,
                "unresolved_street",
                f"street {item.street!r} not found in municipality {nis_code}",
                row=item.row,
                candidates=candidates,
            )
        )
        return none
    if confidence < 1.0:
        result.findings.append(
            Finding(
                item.network,
                "fuzzy_street" if confidence < SURE_MATCH else "street_spelling",
                f"street {item.street!r} read as {street!r} (confidence {confidence:.2f})",
                row=item.row,
                candidates=candidates,
            )
        )
    mask = (located["street"] == street).to_numpy()
    if rule is not None:
        mask = mask & rule.keeps(numbers)
    return mask


def _select_area(
    connection, item: StreetItem, rule: AreaRule, xy, nis_code, result: StreetListResult
) -> np.ndarray:
    level = AreaLevel.deelgemeente if rule.level == "deelgemeente" else AreaLevel.wijk
    areas = repo.area_geometry(connection, level, nis_code=nis_code, name=rule.name)
    if len(areas) != 1:
        found = "ambiguous" if areas else "not found"
        result.findings.append(
            Finding(
                item.network,
                "unresolved_rule",
                f"{rule.level} {rule.name!r} {found} in municipality {nis_code}",
                row=item.row,
                candidates=[a[1] or a[0] for a in areas],
            )
        )
        return np.zeros(len(xy), dtype=bool)
    geom = areas[0][2]
    shapely.prepare(geom)
    return shapely.intersects_xy(geom, xy[:, 0], xy[:, 1])


def _report_overlaps(result: StreetListResult) -> None:
    shaped = [a for a in result.areas if a.area is not None]
    for i, first in enumerate(shaped):
        for second in shaped[i + 1 :]:
            shared = np.intersect1d(first.address_ids, second.address_ids)
            overlap = first.area.intersection(second.area).area
            if len(shared) or overlap > 1.0:
                result.findings.append(
                    Finding(
                        first.network,
                        "overlap",
                        f"overlaps {second.network}: {overlap:.0f} m², "
                        f"{len(shared)} shared addresses",
                    )
                )


__all__ = ["StreetListResult", "derive_from_street_list", "store_derived"]
