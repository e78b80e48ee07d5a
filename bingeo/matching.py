"""Which addresses each network covers: the one definition of "covers", in memory.

A point covers-matches a polygon when it lies in its interior or on its boundary (the same as
PostGIS ``ST_Covers(polygon, point)``); ``shapely.intersects_xy`` gives exactly that for points,
whereas ``contains_xy`` would drop the boundary. The addresses are kept as coordinate arrays sorted
by x (about 90 MB for 5.5 million, against 1.1 GB as shapely points), so the bounding-box
candidates of a polygon are a ``searchsorted`` slice plus a y mask, and only those candidates get a
point-in-polygon test against the prepared polygon.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from bingeo.errors import InvalidInput
from bingeo.geometry import TO_LAMBERT, outside_belgium

# Grids ``changed_boxes`` may lay over a change (cells per side): one box, or a band of boxes
# along the changed edges. Reading one more box costs about as much as reading
# ``BOX_COST_POINTS`` more points (measured: 0.2 ms against 2.5 us per point).
CHANGE_CELLS = (1, 12, 24)
BOX_COST_POINTS = 80
CHANGE_MARGIN_M = 1.0


@dataclass(frozen=True)
class AddressPoints:
    """Located addresses as arrays sorted by x: ``ids`` (int64), ``x``, ``y`` (float64, metres)
    and ``approximate`` (bool: the position is an approximate one, ``bingeo.placement``)."""

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    approximate: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.approximate is None:
            object.__setattr__(self, "approximate", np.zeros(len(self.ids), dtype=bool))

    @classmethod
    def from_arrays(
        cls,
        ids: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        approximate: np.ndarray | None = None,
    ) -> AddressPoints:
        """The read model of the given coordinates (inputs are not changed); no
        ``approximate`` means none is."""
        ids = np.asarray(ids, dtype=np.int64)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        flags = np.zeros(len(ids), bool) if approximate is None else np.asarray(approximate, bool)
        if not (len(ids) == len(x) == len(y) == len(flags)):
            raise ValueError("ids, x, y and approximate must have the same length")
        order = np.argsort(x, kind="stable")
        return cls(ids=ids[order], x=x[order], y=y[order], approximate=flags[order])

    def __len__(self) -> int:
        return len(self.ids)

    def candidates(self, bounds: tuple[float, float, float, float]) -> np.ndarray:
        """Positions of the points inside the closed box (minx, miny, maxx, maxy)."""
        minx, miny, maxx, maxy = bounds
        start = int(np.searchsorted(self.x, minx, side="left"))
        stop = int(np.searchsorted(self.x, maxx, side="right"))
        ys = self.y[start:stop]
        return start + np.flatnonzero((ys >= miny) & (ys <= maxy))

    def covered_by(self, polygon: BaseGeometry) -> np.ndarray:
        """Ids of the points that ``polygon`` covers (boundary included), in x order."""
        if polygon is None or polygon.is_empty:
            return np.empty(0, dtype=np.int64)
        positions = self.candidates(polygon.bounds)
        if len(positions) == 0:
            return np.empty(0, dtype=np.int64)
        # Preparing caches an index of the polygon's edges in place; the answer is unchanged.
        shapely.prepare(polygon)
        inside = shapely.intersects_xy(polygon, self.x[positions], self.y[positions])
        return self.ids[positions[inside]]


@dataclass(frozen=True)
class Pairs:
    """Matches as two aligned arrays, sorted by network then address."""

    network_ids: np.ndarray
    address_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.network_ids)

    def as_set(self) -> set[tuple[int, int]]:
        """The pairs as a set of (network_id, address_id), for checks on small data."""
        return set(zip(self.network_ids.tolist(), self.address_ids.tolist(), strict=True))


def match(points: AddressPoints, polygons: Iterable[tuple[int, BaseGeometry]]) -> Pairs:
    """Every (network, address) pair whose polygon covers the address point."""
    network_parts: list[np.ndarray] = []
    address_parts: list[np.ndarray] = []
    for network_id, polygon in polygons:
        covered = np.sort(points.covered_by(polygon))
        network_parts.append(np.full(len(covered), network_id, dtype=np.int32))
        address_parts.append(covered)
    if not network_parts:
        return Pairs(np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64))
    network_ids = np.concatenate(network_parts)
    address_ids = np.concatenate(address_parts)
    order = np.lexsort((address_ids, network_ids))
    return Pairs(network_ids[order], address_ids[order])


def difference(new: Pairs, old: Pairs) -> tuple[Pairs, Pairs]:
    """(pairs to add, pairs to remove) to turn ``old`` into ``new``."""
    new_keys = _keys(new)
    old_keys = _keys(old)
    added = ~np.isin(new_keys, old_keys, assume_unique=True)
    removed = ~np.isin(old_keys, new_keys, assume_unique=True)
    return (
        Pairs(new.network_ids[added], new.address_ids[added]),
        Pairs(old.network_ids[removed], old.address_ids[removed]),
    )


def _keys(pairs: Pairs) -> np.ndarray:
    # One int64 per pair: address ids stay below 2**40 and network ids below 2**23.
    if len(pairs) and (pairs.address_ids.max() >= 1 << 40 or pairs.network_ids.max() >= 1 << 23):
        raise ValueError("ids too large for the pair keys")
    return (pairs.network_ids.astype(np.int64) << 40) | pairs.address_ids.astype(np.int64)


def changed_boxes(
    before: BaseGeometry, after: BaseGeometry, *, density: float | None = None
) -> list[tuple[float, float, float, float]]:
    """Boxes holding every point whose coverage differs between ``before`` and ``after``.

    A point covered by both areas or by neither keeps its matches; only the symmetric difference
    can change them. A grid over it keeps the cells the difference touches, merged into runs per
    row and widened by ``CHANGE_MARGIN_M`` (so rounding in the overlay cannot leave a point on a
    changed boundary out): for a grown or shrunk area, a band along the edge instead of the
    whole bounding box. With ``density`` (points per m2 around the area) the grid of
    ``CHANGE_CELLS`` that reads the fewest points and boxes is chosen; without it, the finest.
    """
    changed = shapely.symmetric_difference(before, after)
    if changed.is_empty:
        return []
    shapely.prepare(changed)
    best, best_cost = [], np.inf
    for cells in CHANGE_CELLS:
        if density is not None and best and best_cost < 2 * cells * BOX_COST_POINTS:
            break  # a grid of n cells has about 2n boxes: it cannot pay any more
        boxes = _grid_boxes(changed, cells)
        area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes)
        cost = len(boxes) * BOX_COST_POINTS + (density or 0.0) * area
        if density is None or cost < best_cost:
            best, best_cost = boxes, cost
    return best


def _grid_boxes(changed: BaseGeometry, cells: int) -> list[tuple[float, float, float, float]]:
    """Runs per row of the cells of a ``cells`` x ``cells`` grid that ``changed`` touches."""
    minx, miny, maxx, maxy = changed.bounds
    xs = np.linspace(minx, maxx, cells + 1)
    ys = np.linspace(miny, maxy, cells + 1)
    grid = shapely.box(xs[None, :-1], ys[:-1, None], xs[None, 1:], ys[1:, None])
    hit = shapely.intersects(changed, grid)
    margin = CHANGE_MARGIN_M
    boxes = []
    for row in range(cells):
        padded = np.concatenate([[False], hit[row], [False]])
        edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            boxes.append(
                (
                    float(xs[start] - margin),
                    float(ys[row] - margin),
                    float(xs[stop] + margin),
                    float(ys[row + 1] + margin),
                )
            )
    return boxes


def covers_xy(polygon: BaseGeometry, x: float, y: float) -> bool:
    """Whether ``polygon`` covers the point (x, y): the same test ``match`` applies."""
    return bool(shapely.intersects_xy(polygon, x, y))


def lonlat_to_storage(lon: float, lat: float) -> tuple[float, float]:
    """A WGS84 longitude/latitude as Lambert 72 metres (x, y)."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(f"lon={lon}, lat={lat} is not a longitude/latitude (EPSG:4326)")
    x, y = TO_LAMBERT.transform(lon, lat)
    if outside_belgium(np.array([x]), np.array([y]))[0]:
        raise InvalidInput(f"lon={lon}, lat={lat} lies outside Belgium")
    return float(x), float(y)
