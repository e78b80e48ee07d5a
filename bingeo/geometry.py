"""Pure geometry rules: accepted CRSs, reprojection to storage, polygon repair, Belgium's extent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
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
    # ETRS89 lon/lat is the same as WGS84 at the precision of these data; GDAL calls GeoJSON with
    # heights EPSG:4979 (WGS84 3D), and heights are dropped anyway.
    if code in (4258, 4937, 4979):
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


def polygonal(
    geom: BaseGeometry | None, *, label: str, limits: GeometryLimits | None = None
) -> tuple[MultiPolygon, str | None]:
    """``geom`` as a valid MultiPolygon and, when it had to be repaired, why.

    Invalid geometries are repaired with ``make_valid`` and only their polygonal parts are kept;
    anything with no area left is refused. The cost is bounded first (``check_cost``), since a
    repair can take far longer than the geometry's size suggests; a repair that multiplies the
    parts or vertices beyond ``limits`` is refused too.
    """
    limits = limits or GeometryLimits()
    if geom is None or geom.is_empty:
        raise InvalidGeometry(f"{label}: empty geometry")
    if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise InvalidGeometry(f"{label}: {geom.geom_type} is not polygonal")
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise InvalidGeometry(
            f"{label}: coordinates are not finite numbers (wrong CRS or missing values?)"
        )
    # Heights (GeoJSON [lon, lat, z], 3D Shapefiles) do not fit the 2D storage columns.
    geom = shapely.force_2d(geom)
    check_cost(geom, label=label, limits=limits)
    reason = None
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        before = len(_polygon_parts(geom))
        geom = shapely.make_valid(geom)
    polygons = [p for p in _polygon_parts(geom) if not p.is_empty and p.area > 0]
    if not polygons:
        raise InvalidGeometry(f"{label}: no polygonal area left after repair")
    result = MultiPolygon(polygons)
    if reason:
        added = len(polygons) - before
        if added > limits.max_repair_parts:
            raise InvalidGeometry(
                f"{label}: repairing the area would split it into {added} more parts "
                f"(limit {limits.max_repair_parts}); draw a simple outline"
            )
        if shapely.get_num_coordinates(result) > limits.max_vertices:
            raise InvalidGeometry(
                f"{label}: the repaired area has more than {limits.max_vertices} vertices; "
                "draw a simple outline"
            )
    return result, reason


def check_cost(geom: BaseGeometry, *, label: str, limits: GeometryLimits) -> None:
    """Refuse a polygonal geometry whose validation or repair could cost far more than its size.

    Repairing a ring that crosses itself k times costs more than linearly in k (a 100-point
    star crosses itself about 5,000 times and took minutes), and checking validity costs about
    the number of edge pairs whose extents overlap (a 20,000-point comb of slanted teeth: over
    10^8). So the edge pairs are counted first with a sweep along the axis where fewer extents
    overlap, then examined in blocks, stopping as soon as ``max_self_intersections`` crossings
    are seen or ``max_edge_pairs`` pairs were examined: the work is bounded whatever the shape.
    """
    segments = _edges(geom)
    if len(segments) < 2:
        return
    xs, ys = segments[:, 0::2], segments[:, 1::2]
    extents = [(xs.min(axis=1), xs.max(axis=1)), (ys.min(axis=1), ys.max(axis=1))]
    sweeps = []
    for axis, (low, high) in enumerate(extents):
        order = np.argsort(low, kind="stable")
        # Edges after position p in ``order`` whose extent starts before p's ends.
        reach = np.searchsorted(low[order], high[order], side="right")
        counts = np.maximum(reach - np.arange(len(order)) - 1, 0)
        sweeps.append((int(counts.sum()), axis, order, counts))
    _, axis, order, counts = min(sweeps, key=lambda sweep: sweep[0])
    # Everything in sweep order, so that a block reads runs of neighbouring rows.
    segments = segments[order]
    low, high = (values[order] for values in extents[1 - axis])
    ends = np.cumsum(counts)
    crossings = examined = position = 0
    while position < len(order):
        # About _PAIRS_PER_BLOCK pairs (at least one edge's) at a time: bounded memory.
        base = ends[position] - counts[position]
        stop = int(np.searchsorted(ends, base + _PAIRS_PER_BLOCK, side="right"))
        stop = min(max(stop, position + 1), len(order))
        block = counts[position:stop]
        size = int(block.sum())
        if examined + size > limits.max_edge_pairs:
            raise InvalidGeometry(
                f"{label}: the outline is too intricate to check (more than "
                f"{limits.max_edge_pairs:,} pairs of edges lie side by side); simplify it"
            )
        examined += size
        p = np.repeat(np.arange(position, stop), block)
        q = p + 1 + np.arange(size) - np.repeat(np.cumsum(block) - block, block)
        near = (low[q] <= high[p]) & (low[p] <= high[q])
        p, q = p[near], q[near]
        crossings += int(_crossing(segments[p], segments[q]).sum())
        if crossings > limits.max_self_intersections:
            raise InvalidGeometry(
                f"{label}: the area crosses itself more than {limits.max_self_intersections} "
                "times; draw a simple outline"
            )
        position = stop


@dataclass(frozen=True)
class GeometryLimits:
    """Bounds on a geometry given by a user."""

    max_vertices: int = 20_000
    max_area_m2: float = 500_000_000.0
    # Bounds on the cost of checking and repairing (see ``check_cost``).
    max_self_intersections: int = 50
    max_edge_pairs: int = 500_000
    max_repair_parts: int = 50


def geojson_to_storage(
    data: dict | str,
    *,
    label: str = "geometry",
    limits: GeometryLimits | None = None,
) -> tuple[MultiPolygon, list[str]]:
    """A GeoJSON Polygon/MultiPolygon (EPSG:4326) as a valid storage MultiPolygon, with warnings.

    Checked once here for every route: JSON, GeoJSON type, numeric finite coordinates, ring
    closure (closed with a warning), vertex count, validity (repaired with a warning when
    polygonal area remains), emptiness, Belgium's extent and the area limit.
    """
    limits = limits or GeometryLimits()
    if isinstance(data, str):
        data = json_value(data, label=label)
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = data.get("geometry")
    if not isinstance(data, dict) or data.get("type") not in ("Polygon", "MultiPolygon"):
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise InvalidGeometry(f"{label}: expected a GeoJSON Polygon or MultiPolygon, got {found!r}")
    coordinates = data.get("coordinates")
    if not isinstance(coordinates, list):
        raise InvalidGeometry(f"{label}: 'coordinates' must be an array")
    if not coordinates:
        raise InvalidGeometry(f"{label}: empty geometry (no coordinates)")
    polygons = [coordinates] if data["type"] == "Polygon" else coordinates
    warnings: list[str] = []
    shells = []
    vertices = 0
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list) or not rings:
            raise InvalidGeometry(f"{label}: polygon {p} has no rings")
        checked = []
        for r, ring in enumerate(rings):
            ring = _ring(ring, label=f"{label}: polygon {p} ring {r}", warnings=warnings)
            vertices += len(ring)
            if vertices > limits.max_vertices:
                raise InvalidGeometry(
                    f"{label}: more than {limits.max_vertices} vertices; simplify the area"
                )
            checked.append(ring)
        shells.append(Polygon(checked[0], checked[1:]))
    geom = MultiPolygon(shells) if shells else MultiPolygon()
    if geom.is_empty:
        raise InvalidGeometry(f"{label}: empty geometry")
    lon, lat = shapely.get_coordinates(geom).T
    if (lon < -180).any() or (lon > 180).any() or (lat < -90).any() or (lat > 90).any():
        raise InvalidGeometry(f"{label}: coordinates are not longitude/latitude (EPSG:4326)")
    # Validity is judged on the coordinates as drawn: reprojection bends straight lines a little
    # and would turn a degenerate (zero-area) ring into a thin sliver with some area.
    drawn, reason = polygonal(geom, label=label, limits=limits)
    result, reprojected = polygonal(
        shapely.transform(drawn, _to_lambert, interleaved=False), label=label, limits=limits
    )
    if reason or reprojected:
        warnings.append(f"{label}: invalid polygon repaired ({reason or reprojected})")
    if geometry_outside_belgium(result):
        raise InvalidGeometry(f"{label}: coordinates outside Belgium (expects lon/lat, EPSG:4326)")
    if result.area > limits.max_area_m2:
        raise InvalidGeometry(
            f"{label}: area of {result.area / 1e6:.1f} km² exceeds the limit of "
            f"{limits.max_area_m2 / 1e6:.1f} km²"
        )
    return result, warnings


def json_value(text: str | bytes, *, label: str, hint: str = "") -> Any:
    """``text`` parsed as JSON; anything else (also nesting too deep for the parser, an integer
    of thousands of digits, NaN) is refused as ``InvalidInput`` naming the problem."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (RecursionError, ValueError) as exc:  # ValueError: also undecodable bytes, long ints
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        advice = f"; {hint}" if hint else ""
        raise InvalidInput(f"{label}: not valid JSON ({problem}){advice}") from exc


def storage_to_geojson(geom: BaseGeometry, *, precision: int = 7) -> dict:
    """A storage (31370) geometry as a GeoJSON geometry in EPSG:4326 (RFC 7946)."""
    lonlat = shapely.transform(geom, _to_wgs84, interleaved=False)
    lonlat = shapely.set_precision(lonlat, 10**-precision, mode="pointwise")
    return shapely.geometry.mapping(lonlat)


def bbox_to_storage(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A lon/lat bounding box (minx, miny, maxx, maxy) as a Lambert 72 bounding box."""
    minx, miny, maxx, maxy = bbox
    if not (minx <= maxx and miny <= maxy):
        raise InvalidInput("bbox must be minx,miny,maxx,maxy with min <= max")
    if not (
        -180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90
    ):
        raise InvalidInput("bbox must be longitude/latitude (EPSG:4326)")
    edge = shapely.segmentize(shapely.box(*bbox), max(maxx - minx, maxy - miny, 1e-9) / 16)
    box = shapely.transform(edge, _to_lambert, interleaved=False)
    return tuple(float(v) for v in box.bounds)


def belgian_transformer(source: int, target: int) -> Transformer:
    """A transformer (x/y order) between two CRSs as the fixed pipeline PROJ chooses in Belgium.

    pyproj builds a transformer again in every thread that uses it. From two CRSs that takes
    about 50 ms (PROJ searches its database for candidate operations, holding up the server's
    other threads); from the chosen pipeline 0.3 ms, with the same results.
    """
    candidates = Transformer.from_crs(source, target, always_xy=True)
    lonlat = Transformer.from_crs(STORAGE_EPSG, source, always_xy=True).transform(*_BELGIUM_CENTRE)
    candidates.transform(*lonlat)
    return Transformer.from_pipeline(candidates.get_last_used_operation().definition)


def _to_wgs84(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _TO_WGS84.transform(x, y)


def _to_lambert(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return TO_LAMBERT.transform(x, y)


_BELGIUM_CENTRE = (150_000.0, 170_000.0)  # Lambert 72
_TO_WGS84 = belgian_transformer(STORAGE_EPSG, GEOJSON_EPSG)
TO_LAMBERT = belgian_transformer(GEOJSON_EPSG, STORAGE_EPSG)


# Edge pairs examined at once by ``check_cost`` (a few MB of temporary arrays).
_PAIRS_PER_BLOCK = 65_536


def _polygon_parts(geom: BaseGeometry) -> list[Polygon]:
    """The polygons of ``geom``, also those of collections inside collections."""
    if isinstance(geom, Polygon):
        return [geom]
    return [p for part in getattr(geom, "geoms", []) for p in _polygon_parts(part)]


def _edges(geom: BaseGeometry) -> np.ndarray:
    """The polygon edges of ``geom`` as rows x0, y0, x1, y1 (zero-length ones left out)."""
    rings = shapely.get_rings(np.asarray(_polygon_parts(geom), dtype=object))
    coordinates, ring = shapely.get_coordinates(rings, return_index=True)
    segments = np.hstack([coordinates[:-1], coordinates[1:]])[ring[:-1] == ring[1:]]
    return segments[(segments[:, :2] != segments[:, 2:]).any(axis=1)]


def _crossing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether segments ``a`` and ``b`` (rows x0, y0, x1, y1 whose extents overlap) cross or
    overlap along a stretch. Touching at a point is left out: parts of a valid MultiPolygon
    (a repaired star's, for one) may touch at many points, and that costs a repair nothing."""

    def side(s: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]
        return np.sign(dx * (y - s[:, 1]) - dy * (x - s[:, 0]))

    a0, a1 = side(b, a[:, 0], a[:, 1]), side(b, a[:, 2], a[:, 3])
    b0, b1 = side(a, b[:, 0], b[:, 1]), side(a, b[:, 2], b[:, 3])
    proper = (a0 * a1 < 0) & (b0 * b1 < 0)
    collinear = (a0 == 0) & (a1 == 0)
    shared = np.zeros(len(a), dtype=bool)
    for axis in (0, 1):
        start = np.maximum(
            np.minimum(a[:, axis], a[:, axis + 2]), np.minimum(b[:, axis], b[:, axis + 2])
        )
        end = np.minimum(
            np.maximum(a[:, axis], a[:, axis + 2]), np.maximum(b[:, axis], b[:, axis + 2])
        )
        shared |= end > start
    return proper | (collinear & shared)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _ring(ring: object, *, label: str, warnings: list[str]) -> list[tuple[float, float]]:
    if not isinstance(ring, list):
        raise InvalidGeometry(f"{label}: a ring must be an array of positions")
    points = []
    for position in ring:
        if (
            not isinstance(position, list | tuple)
            or len(position) < 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position[:2])
        ):
            raise InvalidGeometry(f"{label}: a position must be [longitude, latitude] numbers")
        x, y = float(position[0]), float(position[1])
        if not (np.isfinite(x) and np.isfinite(y)):
            raise InvalidGeometry(f"{label}: coordinates must be finite numbers")
        points.append((x, y))
    if len(points) >= 3 and points[0] != points[-1]:
        warnings.append(f"{label}: ring was not closed; closed it")
        points.append(points[0])
    if len(points) < 4:
        raise InvalidGeometry(f"{label}: a ring needs at least 4 positions")
    return points
