"""Reading geodata files (GeoJSON, GeoPackage, Shapefile, zipped Shapefile) with clear errors."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from bingeo.errors import InvalidInput

GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".kml")


def read_geofile(path: Path, *, layer: str | None = None) -> gpd.GeoDataFrame:
    """A geodata file as a GeoDataFrame, or an ``InvalidInput`` naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path}: the file is empty")
    if path.suffix.lower() not in GEO_SUFFIXES:
        raise InvalidInput(
            f"{path}: unsupported file type {path.suffix!r}; use GeoJSON, GeoPackage or Shapefile"
        )
    source = f"zip://{path}" if path.suffix.lower() == ".zip" else str(path)
    try:
        layers = [name for name, _ in pyogrio.list_layers(source)]
    except Exception as exc:  # pyogrio/GDAL errors have no stable hierarchy
        raise InvalidInput(f"{path}: not a readable geodata file ({_first_line(exc)})") from exc
    if layer is None and len(layers) > 1:
        raise InvalidInput(f"{path}: the file has several layers, choose one of {layers}")
    if layer is not None and layer not in layers:
        raise InvalidInput(f"{path}: no layer {layer!r}; the file has {layers}")
    try:
        frame = gpd.read_file(source, layer=layer, engine="pyogrio")
    except Exception as exc:
        raise InvalidInput(f"{path}: not a readable geodata file ({_first_line(exc)})") from exc
    if "geometry" not in frame or not isinstance(frame, gpd.GeoDataFrame):
        raise InvalidInput(f"{path}: the layer has no geometry")
    if frame.empty:
        raise InvalidInput(f"{path}: the layer has no features")
    return frame


def pick_column(
    frame_columns: list[str], candidates: tuple[str, ...], explicit: str | None
) -> str | None:
    """The first of ``candidates`` present (case-insensitive), or ``explicit`` when given."""
    if explicit:
        if explicit not in frame_columns:
            raise InvalidInput(f"no column {explicit!r}; the columns are {list(frame_columns)}")
        return explicit
    lowered = {c.lower(): c for c in frame_columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


def text_or_none(value: object) -> str | None:
    """A cell as stripped text, or None when it is missing or blank."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def decimal_id(text: str) -> int | None:
    """``text`` as an id when it is one written in ASCII digits (at most 18), else None.

    ``str.isdigit`` alone also accepts "²" (which ``int`` refuses) and thousands of digits
    (which ``int`` refuses beyond 4,300)."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
