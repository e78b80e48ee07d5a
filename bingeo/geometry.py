"""Pure geometry rules: accepted CRSs, reprojection to storage, polygon repair, Belgium's extent."""

from __future__ import annotations

import json
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from bingeo.errors import InvalidGeometry, InvalidInput, UnknownCRS

STORAGE_EPSG = 31370
GEOJSON_EPSG = 4326
ACCEPTED_EPSG = (4326, 31370, 3812)
# Belgium's extent in Lambert 72 with a margin of about 5 km (the country spans
# x 21,992-295,166 and y 21,361-244,027).
BELGIUM_BOUNDS_31370 = (17_000.0, 16_000.0, 300_000.0, 249_000.0)


@dataclass(frozen=True)
class Repair:
    """A polygon that was invalid and what was done to it."""

    index: int
    reason: str


def epsg_of(crs: object | None, *, default: int | None = None, source: str = "input") -> int:
    """The EPSG code of ``crs`` (a pyproj CRS, int or string) if bingeo accepts it."""
    if crs is None or crs == "":
        if default is None:
            raise UnknownCRS(f"{source}: no CRS given; pass one of EPSG:4326, 31370 or 3812")
        crs = default
    try:
        parsed = CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises its own CRSError with a long text
        raise UnknownCRS(f"{source}: unknown CRS {crs!r}") from exc
    code = parsed.to_epsg(min_confidence=70)
    if code == 4258:  # ETRS89 lon/lat: the same as WGS84 at the precision of these data
        code = 4326
    if code not in ACCEPTED_EPSG:
        raise UnknownCRS(
            f"{source}: CRS {parsed.name!r} (EPSG:{code}) is not accepted; "
            "use EPSG:4326, 31370 or 3812"
        )
    return code


def to_storage(
    frame: gpd.GeoDataFrame, *, crs: object | None = None, source: str
) -> gpd.GeoDataFrame:
    """``frame`` reprojected to EPSG:31370; ``crs`` is used only when the frame carries none."""
    code = epsg_of(frame.crs if frame.crs is not None else crs, source=source)
    frame = frame.set_crs(code, allow_override=True)
    return frame if code == STORAGE_EPSG else frame.to_crs(STORAGE_EPSG)


def outside_belgium(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean mask of Lambert 72 coordinates that lie outside Belgium's extent."""
    minx, miny, maxx, maxy = BELGIUM_BOUNDS_31370
    return ~((xs >= minx) & (xs <= maxx) & (ys >= miny) & (ys <= maxy))


def geometry_outside_belgium(geom: BaseGeometry) -> bool:
    """True when a (storage CRS) geometry's bounding box leaves Belgium's extent."""
    minx, miny, maxx, maxy = geom.bounds
    return bool(outside_belgium(np.array([minx, maxx]), np.array([miny, maxy])).any())


def polygonal(geom: BaseGeometry | None, *, label: str) -> tuple[MultiPolygon, str | None]:
    """``geom`` as a valid MultiPolygon and, when it had to be repaired, why.

    Invalid geometries are repaired with ``make_valid`` and only their polygonal parts are kept;
    anything with no area left is refused.
    """
    if geom is None or geom.is_empty:
        raise InvalidGeometry(f"{label}: empty geometry")
    if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise InvalidGeometry(f"{label}: {geom.geom_type} is not polygonal")
    reason = None
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        geom = shapely.make_valid(geom)
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon | MultiPolygon)]
    polygons: list[Polygon] = []
    for part in parts:
        polygons.extend(part.geoms if isinstance(part, MultiPolygon) else [part])
    polygons = [p for p in polygons if not p.is_empty and p.area > 0]
    if not polygons:
        raise InvalidGeometry(f"{label}: no polygonal area left after repair")
    return MultiPolygon(polygons), reason


def geojson_to_storage(
    data: dict | str, *, label: str = "GeoJSON"
) -> tuple[MultiPolygon, str | None]:
    """A GeoJSON (Multi)Polygon geometry in EPSG:4326 as a valid storage MultiPolygon."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{label}: not JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(data, dict) or "type" not in data:
        raise InvalidGeometry(f"{label}: not a GeoJSON geometry object")
    if data.get("type") == "Feature":
        data = data.get("geometry") or {}
    try:
        geom = shapely.geometry.shape(data)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InvalidGeometry(f"{label}: malformed GeoJSON geometry ({exc})") from exc
    if not geom.is_empty:
        lon_lat = shapely.get_coordinates(geom)
        if not np.isfinite(lon_lat).all():
            raise InvalidGeometry(f"{label}: coordinates are not finite numbers")
    frame = gpd.GeoSeries([geom], crs=GEOJSON_EPSG).to_crs(STORAGE_EPSG)
    result, reason = polygonal(frame.iloc[0], label=label)
    if geometry_outside_belgium(result):
        raise InvalidGeometry(f"{label}: coordinates outside Belgium (expects lon/lat, EPSG:4326)")
    return result, reason


def storage_to_geojson(geom: BaseGeometry) -> dict:
    """A storage (31370) geometry as a GeoJSON geometry in EPSG:4326."""
    out = gpd.GeoSeries([geom], crs=STORAGE_EPSG).to_crs(GEOJSON_EPSG).iloc[0]
    return shapely.geometry.mapping(out)
