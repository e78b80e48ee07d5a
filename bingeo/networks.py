"""Networks (BIN / BIN-Z): kinds, lifecycle states and reading network areas from files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd

from bingeo.areas import Rejection
from bingeo.db.models import NetworkKind, NetworkStatus
from bingeo.errors import BinGeoError, InvalidInput
from bingeo.files import pick_column, read_geofile, text_or_none
from bingeo.geometry import geometry_outside_belgium, polygonal, to_storage

CODE_COLUMNS = ("code", "network_code", "bin_id", "id")
NAME_COLUMNS = ("name", "bin_name", "naam")
KIND_COLUMNS = ("kind", "bin_type", "type")
STATUS_COLUMNS = ("status", "lifecycle_status", "state")
NIS_COLUMNS = ("nis_code", "niscode", "municipality_nis")
ZONE_COLUMNS = ("police_zone_code", "police_zone")
FIELDS = ("code", "name", "kind", "status", "nis_code", "police_zone_code")


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
        "nis_code": pick_column(columns, NIS_COLUMNS, None),
        "police_zone_code": pick_column(columns, ZONE_COLUMNS, None),
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
                "nis_code": text_or_none(feature[pick["nis_code"]]) if pick["nis_code"] else None,
                "police_zone_code": text_or_none(feature[pick["police_zone_code"]])
                if pick["police_zone_code"]
                else None,
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


def _derived_code(name: str, wkb: bytes) -> str:
    # Files without an id still upsert: the same name and area give the same code.
    return "N-" + hashlib.sha1(name.encode() + wkb).hexdigest()[:10]
