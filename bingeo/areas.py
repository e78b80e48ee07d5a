"""Reference areas (sector, wijk, deelgemeente, municipality, police zone) read from files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd

from bingeo.errors import BinGeoError, InvalidInput
from bingeo.files import pick_column, read_geofile, text_or_none
from bingeo.geometry import geometry_outside_belgium, polygonal, to_storage
from bingeo.vocabulary import AreaLevel

CODE_COLUMNS: dict[AreaLevel, tuple[str, ...]] = {
    AreaLevel.sector: ("cd_sector", "nis9_code", "code"),
    AreaLevel.wijk: ("wijk_code", "code"),
    AreaLevel.deelgemeente: ("deelgemeente_code", "code"),
    AreaLevel.municipality: ("nis_code", "cd_munty_refnis", "nis", "code"),
    AreaLevel.police_zone: ("police_zone_code", "code"),
}
NAME_NL_COLUMNS = ("name_nl", "name", "sectornaam", "tx_sector_descr_nl", "police_zone_name")
NAME_FR_COLUMNS = ("name_fr", "tx_sector_descr_fr")
NIS_COLUMNS = ("nis_code", "cd_munty_refnis", "nis")
PARENT_COLUMNS: dict[AreaLevel, tuple[str, ...]] = {AreaLevel.sector: ("wijk_code",)}
MEMBERS_COLUMNS = ("member_nis_codes",)
FRAME_COLUMNS = ["feature", "code", "name_nl", "name_fr", "nis_code", "parent_code", "geometry"]


@dataclass
class Rejection:
    """A row or feature that cannot be imported, and why."""

    row: int
    reason: str


@dataclass
class AreaBatch:
    """Reference areas read from one file, in storage CRS, ready to be stored."""

    level: AreaLevel
    frame: gpd.GeoDataFrame  # columns: code, name_nl, name_fr, nis_code, parent_code, geometry
    members: list[tuple[str, str]] = field(default_factory=list)  # (police zone, NIS code)
    repaired: list[Rejection] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    read: int = 0


def read_areas(
    path: Path,
    level: AreaLevel,
    *,
    layer: str | None = None,
    crs: str | None = None,
    code_column: str | None = None,
    name_column: str | None = None,
) -> AreaBatch:
    """Read reference areas of ``level`` from a GeoJSON, GeoPackage or Shapefile.

    Geometries are reprojected to EPSG:31370 and invalid ones repaired (polygonal parts kept);
    features that cannot be used are listed in ``rejected`` with their reason.
    """
    level = AreaLevel(level)
    raw = read_geofile(path, layer=layer)
    raw = to_storage(raw, crs=crs, source=str(path))
    columns = list(raw.columns)
    code_col = pick_column(columns, CODE_COLUMNS[level], code_column)
    if code_col is None:
        raise InvalidInput(
            f"{path}: no code column for {level.value} (looked for {CODE_COLUMNS[level]}); "
            "name it with --code-column"
        )
    name_col = pick_column(columns, NAME_NL_COLUMNS, name_column)
    fr_col = pick_column(columns, NAME_FR_COLUMNS, None)
    nis_col = pick_column(columns, NIS_COLUMNS, None)
    parent_col = pick_column(columns, PARENT_COLUMNS.get(level, ()), None)
    members_col = (
        pick_column(columns, MEMBERS_COLUMNS, None) if level == AreaLevel.police_zone else None
    )

    batch = AreaBatch(level=level, frame=gpd.GeoDataFrame(), read=len(raw))
    rows = []
    for position, (_, feature) in enumerate(raw.iterrows(), start=1):
        label = f"{path}: feature {position}"
        code = text_or_none(feature[code_col])
        if code is None:
            batch.rejected.append(Rejection(position, f"{label}: empty {code_col}"))
            continue
        label = f"{label} ({code})"
        try:
            geom, reason = polygonal(feature.geometry, label=label)
            if geometry_outside_belgium(geom):
                raise InvalidInput(f"{label}: coordinates outside Belgium after reprojection")
        except BinGeoError as exc:
            batch.rejected.append(Rejection(position, exc.detail))
            continue
        if reason:
            batch.repaired.append(Rejection(position, f"{label}: {reason}"))
        nis = text_or_none(feature[nis_col]) if nis_col else None
        if level == AreaLevel.municipality:
            nis = code
        elif nis is None and level in (AreaLevel.sector, AreaLevel.wijk, AreaLevel.deelgemeente):
            nis = code[:5]
        rows.append(
            {
                "feature": position,
                "code": code,
                "name_nl": text_or_none(feature[name_col]) if name_col else None,
                "name_fr": text_or_none(feature[fr_col]) if fr_col else None,
                "nis_code": nis,
                "parent_code": text_or_none(feature[parent_col]) if parent_col else None,
                "geometry": geom,
            }
        )
        if members_col:
            for member in str(feature[members_col] or "").split(","):
                if member.strip():
                    batch.members.append((code, member.strip()))
    frame = gpd.GeoDataFrame(rows, columns=FRAME_COLUMNS, geometry="geometry", crs=31370)
    duplicated = frame["code"].duplicated(keep="first")
    for position, code in frame.loc[duplicated, ["feature", "code"]].itertuples(index=False):
        batch.rejected.append(
            Rejection(int(position), f"{path}: feature {position}: code {code} repeated")
        )
    batch.rejected.sort(key=lambda rejection: rejection.row)
    batch.frame = frame.loc[~duplicated, FRAME_COLUMNS[1:]].reset_index(drop=True)
    return batch
