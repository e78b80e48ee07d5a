"""Alerts scoped to a drawn area (pure): the area, who it reaches, the messages, CAP 1.2 export.

One definition of "inside", shared by the preview, the send and the checks:

* an address is inside a drawn polygon when the polygon covers it (boundary included, as
  ``ST_Covers``: ``shapely.intersects_xy``, the same test as ``bingeo.matching``);
* an address is inside a circle when its distance from the centre is at most ``radius_m`` (as
  ``ST_DWithin``); the circle's polygon (``CIRCLE_QUAD_SEGS`` segments per quarter) is kept only
  to draw and store it: the share of a network inside a circle is computed with the true circle;
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
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point
from shapely.geometry.base import BaseGeometry

from bingeo.errors import InvalidGeometry, InvalidInput, MessageTooLong
from bingeo.geometry import (
    GeometryLimits,
    geojson_to_storage,
    geometry_outside_belgium,
    storage_to_geojson,
)
from bingeo.matching import AddressPoints, lonlat_to_storage
from bingeo.networks import shares_area

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
# Longest message text per language (an e-mail body) and headline (an e-mail subject).
MESSAGE_MAX_CHARS = 5000
HEADLINE_MAX_CHARS = 200

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


# the located addresses, cell by cell -------------------------------------------------------------

GRID_CELL_M = 200.0
# At most about this many cells: addresses spread wider get larger cells.
GRID_MAX_CELLS = 4_000_000
GRID_MAX_SIDE = 4_000
# A cell is judged as its box widened by this much (metres), so that a point that rounding puts
# in the next cell is still judged with the cell it is in.
_SLACK_M = 1e-3
# A buffer's round joins, of 4 segments a quarter, lie inside the true rounded band and reach
# beyond cos(pi / 16) > 0.98 of its width; GEOS first simplifies the line by less than 1 % of the
# width, which can only widen the band. A buffer 1/0.98 as wide holds every point within the
# width; one 0.98 as wide holds only such points.
_BAND_SEGMENTS = 4
_BAND_FACTOR = 0.98


class PointGrid:
    """Located addresses ordered cell by cell of a square grid (row by row, south to north; west
    to east within a row), with the first position of every cell and an index from id to position.

    The points of a set of cells are runs of positions found without scanning a strip of the
    country, and cells taken in key order give increasing positions: no sort is needed.
    """

    def __init__(self, points: AddressPoints, *, cell_m: float = GRID_CELL_M) -> None:
        x, y = points.x, points.y
        self.x0 = float(np.floor(x.min())) if len(x) else 0.0
        self.y0 = float(np.floor(y.min())) if len(y) else 0.0
        width = float(x.max()) - self.x0 if len(x) else 0.0
        height = float(y.max()) - self.y0 if len(y) else 0.0
        self.cell_m = max(
            float(cell_m),
            math.sqrt(width * height / GRID_MAX_CELLS),
            max(width, height) / GRID_MAX_SIDE,
        )
        col = np.floor((x - self.x0) / self.cell_m).astype(np.int64)
        row = np.floor((y - self.y0) / self.cell_m).astype(np.int64)
        self.ncols = int(col.max()) + 1 if len(x) else 1
        self.nrows = int(row.max()) + 1 if len(y) else 1
        key = row * self.ncols + col
        # Stable: within a cell the points keep the order of ``points`` (x order).
        order = np.argsort(key, kind="stable")
        self.ids, self.x, self.y = points.ids[order], x[order], y[order]
        self.approximate = points.approximate[order]
        # Approximate positions before each position: a run of cells is counted in two reads.
        self._approximate_before = np.concatenate(([0], np.cumsum(self.approximate)))
        counts = np.bincount(key, minlength=self.ncols * self.nrows)
        self.starts = np.concatenate(([0], np.cumsum(counts)))
        by_id = np.argsort(self.ids, kind="stable")
        self._sorted_ids = self.ids[by_id]
        self._by_id = by_id.astype(np.int32) if len(by_id) < 2**31 else by_id

    def __len__(self) -> int:
        return len(self.ids)

    def cells(self, bounds: tuple[float, float, float, float]) -> np.ndarray:
        """Keys (increasing) of the cells that meet the closed box (minx, miny, maxx, maxy)."""
        minx, miny, maxx, maxy = bounds
        c0 = max(math.floor((minx - self.x0) / self.cell_m), 0)
        c1 = min(math.floor((maxx - self.x0) / self.cell_m), self.ncols - 1)
        r0 = max(math.floor((miny - self.y0) / self.cell_m), 0)
        r1 = min(math.floor((maxy - self.y0) / self.cell_m), self.nrows - 1)
        if c0 > c1 or r0 > r1:
            return np.empty(0, dtype=np.int64)
        rows = np.arange(r0, r1 + 1, dtype=np.int64)[:, None]
        return (rows * self.ncols + np.arange(c0, c1 + 1, dtype=np.int64)).ravel()

    def occupied(self, cells: np.ndarray) -> np.ndarray:
        """The cells (of ``cells``) that hold at least one point."""
        return cells[self.starts[cells + 1] > self.starts[cells]]

    def count(self, cells: np.ndarray) -> int:
        """How many points the cells hold."""
        return int(np.sum(self.starts[cells + 1] - self.starts[cells]))

    def count_approximate(self, cells: np.ndarray) -> int:
        """How many points of the cells have an approximate position."""
        before = self._approximate_before
        return int(np.sum(before[self.starts[cells + 1]] - before[self.starts[cells]]))

    def boxes(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(minx, miny, maxx, maxy) of the cells, each widened by ``_SLACK_M``."""
        minx = self.x0 + (cells % self.ncols) * self.cell_m
        miny = self.y0 + (cells // self.ncols) * self.cell_m
        return (
            minx - _SLACK_M,
            miny - _SLACK_M,
            minx + self.cell_m + _SLACK_M,
            miny + self.cell_m + _SLACK_M,
        )

    def centres(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the cells' centres."""
        half = self.cell_m / 2
        return (
            self.x0 + (cells % self.ncols) * self.cell_m + half,
            self.y0 + (cells // self.ncols) * self.cell_m + half,
        )

    @property
    def half_diagonal(self) -> float:
        """How far a point of a cell (widened by ``_SLACK_M``) may lie from the cell's centre."""
        return math.sqrt(2.0) * (self.cell_m / 2 + _SLACK_M)

    def positions(self, cells: np.ndarray) -> np.ndarray:
        """Positions (increasing for increasing ``cells``) of the points in the cells."""
        first = self.starts[cells]
        return _runs(first, self.starts[cells + 1] - first)

    def find(self, ids: Iterable[int]) -> np.ndarray:
        """The position of each id (-1 for an id that is not a located address)."""
        ids = np.fromiter(ids, dtype=np.int64)
        # Searched in increasing order: consecutive searches then walk the same parts of the
        # index, and a few thousand ids are found several times faster.
        order = np.argsort(ids)
        index, found = _sorted_find(self._sorted_ids, ids[order])
        positions = np.full(len(ids), -1, dtype=np.int64)
        # Only the found indexes are looked up: with no point at all, none is valid.
        positions[order[found]] = self._by_id[index[found]]
        return positions


LABEL_FIELDS = ("street", "house_number", "box", "postcode")


class AddressLabels:
    """Street, house number, box and postcode of located addresses, by id (a read model).

    Each field is kept as a code per address into the field's distinct values (-1: none): the
    5.5 million labels of a national register take about 130 MB so, where strings would take
    gigabytes.
    """

    def __init__(self, ids: np.ndarray, fields: dict[str, tuple[np.ndarray, list]]) -> None:
        order = np.argsort(ids, kind="stable")
        self._ids = ids[order]
        # The values end with None, which code -1 picks.
        self._fields = [
            (fields[name][0][order], np.array([*fields[name][1], None], dtype=object))
            for name in LABEL_FIELDS
        ]

    def of(self, ids: Sequence[int]) -> tuple[list, ...]:
        """The labels of the ids, one list per field of ``LABEL_FIELDS`` (in the order of the
        ids; None where an id has no label or the field no value)."""
        ids = np.asarray(ids, dtype=np.int64)
        index, found = _sorted_find(self._ids, ids)
        return tuple(
            values[np.where(found, codes[index], -1)].tolist() for codes, values in self._fields
        )


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

    def split_cells(self, grid: PointGrid) -> tuple[np.ndarray, np.ndarray]:
        """Keys (increasing) of the occupied cells of ``grid`` wholly inside the area, whose points
        are all inside untested, and of those that meet the area without lying wholly inside,
        whose points must be tested. A cell is judged as its slightly widened box; a polygon's
        cell must lie in its interior."""
        if self.is_circle:
            cells = grid.occupied(grid.cells(self._bounds()))
            nearest, farthest = self._cell_distances(grid, cells)
            whole = farthest < self.radius_m
            return cells[whole], cells[(nearest <= self.radius_m) & ~whole]
        cells = grid.occupied(grid.cells(self.polygon.bounds))
        boxes = shapely.box(*grid.boxes(cells))
        shapely.prepare(self.polygon)
        meets = shapely.intersects(self.polygon, boxes)
        whole = np.zeros(len(cells), dtype=bool)
        whole[meets] = shapely.contains_properly(self.polygon, boxes[meets])
        return cells[whole], cells[meets & ~whole]

    def covers(self, grid: PointGrid, positions: np.ndarray) -> np.ndarray:
        """For each position of ``grid``, whether its point is inside the area (the definition)."""
        x, y = grid.x[positions], grid.y[positions]
        if self.is_circle:
            return np.hypot(x - self.centre[0], y - self.centre[1]) <= self.radius_m
        shapely.prepare(self.polygon)
        return shapely.intersects_xy(self.polygon, x, y)

    def meets(self, networks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each network: whether its interior meets the area's interior (reached), and
        whether it meets the area on its edge only (adjacent)."""
        if self.is_circle:
            distance = shapely.distance(networks, shapely.Point(self.centre))
            return distance < self.radius_m, distance == self.radius_m
        shapely.prepare(self.polygon)
        touches = shapely.touches(self.polygon, networks)
        return shapely.intersects(self.polygon, networks) & ~touches, touches

    def shares(self, networks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each network: the share (0-1) of its area inside the area (a circle: the true
        circle), that part's area in m² and its perimeter (0 where a circle cuts a network: a
        network's edge never follows a circle, so its area alone decides)."""
        area = shapely.area(networks)
        share = np.where(area > 0, 1.0, 0.0)
        perimeter = shapely.length(networks)
        rest = np.flatnonzero(area > 0)
        if self.is_circle:
            # A network whose vertices all lie in the circle lies in it.
            rest = rest[self._farthest(networks[rest]) > self.radius_m]
            if len(rest):
                part = _disk_overlap(networks[rest], self.centre, self.radius_m)
                share[rest] = np.clip(part / area[rest], 0.0, 1.0)
                perimeter[rest] = 0.0
            return share, share * area, perimeter
        shapely.prepare(self.polygon)
        rest = rest[~shapely.contains(self.polygon, networks[rest])]
        if len(rest):
            part = shapely.intersection(self.polygon, networks[rest])
            share[rest] = np.minimum(1.0, shapely.area(part) / area[rest])
            perimeter[rest] = shapely.length(part)
        return share, share * area, perimeter

    def near_edge(
        self, grid: PointGrid, distance_m: float = EDGE_M
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the points within ``distance_m`` of the edge, and whether each is inside.

        Only points of cells that meet the band along the edge (a circle), or points in a band
        along the edge (a polygon), are measured.
        """
        margin = distance_m + 1.0
        if self.is_circle:
            minx, miny, maxx, maxy = self._bounds()
            cells = grid.cells((minx - margin, miny - margin, maxx + margin, maxy + margin))
            nearest, farthest = self._cell_distances(grid, cells)
            meets = (nearest <= self.radius_m + distance_m) & (
                farthest >= self.radius_m - distance_m
            )
            positions = grid.positions(cells[meets])
            x, y = grid.x[positions], grid.y[positions]
            distance = np.hypot(x - self.centre[0], y - self.centre[1])
            near = np.abs(distance - self.radius_m) <= distance_m
            return positions[near], distance[near] <= self.radius_m
        boundary = self.polygon.boundary
        minx, miny, maxx, maxy = self.polygon.bounds
        cells = grid.occupied(
            grid.cells((minx - margin, miny - margin, maxx + margin, maxy + margin))
        )
        # The points of the cells that may hold a point within distance_m of the edge (their
        # centre lies within distance_m and half their diagonal of it), not of the whole extent.
        reach = _band_holding(boundary, distance_m + grid.half_diagonal)
        shapely.prepare(reach)
        positions = grid.positions(cells[shapely.intersects_xy(reach, *grid.centres(cells))])
        x, y = grid.x[positions], grid.y[positions]
        # Every point within distance_m lies in the outer band and every point of the inner band
        # lies within it: only the points between the two are measured exactly (a distance
        # costs microseconds a point).
        outer = _band_holding(boundary, distance_m)
        shapely.prepare(outer)
        maybe = shapely.intersects_xy(outer, x, y)
        positions, x, y = positions[maybe], x[maybe], y[maybe]
        inner = _band_within(boundary, distance_m)
        shapely.prepare(inner)
        near = shapely.intersects_xy(inner, x, y)
        unsure = np.flatnonzero(~near)
        near[unsure] = shapely.dwithin(boundary, shapely.points(x[unsure], y[unsure]), distance_m)
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

    def _bounds(self) -> tuple[float, float, float, float]:
        if not self.is_circle:
            return self.polygon.bounds
        x, y = self.centre
        r = self.radius_m
        return (x - r, y - r, x + r, y + r)

    def _farthest(self, geometries: np.ndarray) -> np.ndarray:
        """Distance from the centre to the farthest vertex of each (non-empty) geometry."""
        coordinates, index = shapely.get_coordinates(geometries, return_index=True)
        distance = np.hypot(coordinates[:, 0] - self.centre[0], coordinates[:, 1] - self.centre[1])
        return np.maximum.reduceat(distance, np.searchsorted(index, np.arange(len(geometries))))

    def _cell_distances(self, grid: PointGrid, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest and farthest distance from the centre to each (widened) cell."""
        minx, miny, maxx, maxy = grid.boxes(cells)
        cx, cy = self.centre
        nearest = np.hypot(
            np.maximum(np.maximum(minx - cx, cx - maxx), 0.0),
            np.maximum(np.maximum(miny - cy, cy - maxy), 0.0),
        )
        farthest = np.hypot(
            np.maximum(np.abs(minx - cx), np.abs(maxx - cx)),
            np.maximum(np.abs(miny - cy), np.abs(maxy - cy)),
        )
        return nearest, farthest


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
    police_zone_codes: tuple[str, ...]  # every zone it lies in, the main one first
    geometry: BaseGeometry


class NetworkIndex:
    """Networks with prepared areas, an STRtree of their extents, the addresses of ``points`` in
    a grid, and for every address the networks that cover it (computed once, then kept).

    Cell by cell it also keeps how many of a cell's addresses each network covers, so that an
    area counts the addresses of the cells wholly inside it without looking at them.
    """

    def __init__(self, networks: Iterable[NetworkShape], points: AddressPoints) -> None:
        self.networks = list(networks)
        self.points = grid = PointGrid(points)
        geoms = np.array([n.geometry for n in self.networks], dtype=object)
        # The matching rule (``intersects_xy``: boundary included, as ``ST_Covers``), once per
        # network; preparing here also lets concurrent readers find every area prepared.
        covered = [_covered(geom, grid) for geom in geoms]
        self.geoms = geoms
        self.tree = shapely.STRtree(geoms)
        positions = np.concatenate(covered) if covered else np.empty(0, dtype=np.int64)
        order = np.argsort(positions, kind="stable")
        labels = np.repeat(np.arange(len(covered), dtype=np.int32), [len(c) for c in covered])
        # (address, network) pairs address by address: the networks of the address at position
        # p are _network_of[_first[p]:_first[p + 1]].
        self._network_of = labels[order]
        self._first = np.concatenate(([0], np.cumsum(np.bincount(positions, minlength=len(grid)))))
        # (cell, network, addresses) address counts cell by cell: the networks of cell c are
        # _cell_network[_cell_first[c]:_cell_first[c + 1]], with their counts in _cell_count.
        cell_of = np.repeat(np.arange(len(grid.starts) - 1), np.diff(grid.starts))
        key = cell_of[positions] * max(len(geoms), 1) + labels
        key, count = np.unique(key, return_counts=True)
        self._cell_network = (key % max(len(geoms), 1)).astype(np.int32)
        self._cell_count = count
        self._cell_first = np.searchsorted(key // max(len(geoms), 1), np.arange(len(grid.starts)))
        self._in_any: dict[tuple, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.networks)

    def candidates(self, area: AlertArea) -> list[int]:
        """Positions of the networks whose extent meets the area's extent."""
        if not self.networks:
            return []
        return sorted(int(i) for i in self.tree.query(shapely.box(*area.polygon.bounds)))

    def networks_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (address, network) pairs of the addresses at ``positions``: for each pair, the
        index in ``positions`` of the address and the position of the network."""
        first = self._first[positions]
        count = self._first[positions + 1] - first
        owner = np.repeat(np.arange(len(positions)), count)
        return owner, self._network_of[_runs(first, count)]

    def cell_counts(self, cells: np.ndarray) -> np.ndarray:
        """For each network, how many addresses of the cells it covers."""
        first = self._cell_first[cells]
        runs = _runs(first, self._cell_first[cells + 1] - first)
        counts = np.bincount(
            self._cell_network[runs], weights=self._cell_count[runs], minlength=len(self)
        )
        return counts.astype(np.int64)

    def cell_covered(self, cells: np.ndarray, filters: Filters) -> int:
        """How many addresses of the cells a network passing ``filters`` covers."""
        covered = self._in_any.get(filters.key)
        if covered is None:
            # Running count, position by position, of the addresses such a network covers
            # (computed once per set of filters, then kept).
            accepted = np.array([filters.accepts(n) for n in self.networks] + [False])
            pairs = np.repeat(np.arange(len(self.points)), np.diff(self._first))
            flagged = np.bincount(
                pairs[accepted[self._network_of]], minlength=len(self.points)
            ).astype(bool)
            covered = self._in_any[filters.key] = np.concatenate(([0], np.cumsum(flagged)))
        starts = self.points.starts
        return int(np.sum(covered[starts[cells + 1]] - covered[starts[cells]]))


@dataclass(frozen=True)
class Filters:
    """Which networks an alert may reach: kinds and statuses (active by default)."""

    kinds: tuple[str, ...] = ("BIN", "BIN-Z")
    statuses: tuple[str, ...] = ("active",)

    @property
    def key(self) -> tuple:
        """The same for filters that accept the same networks."""
        return (tuple(sorted(set(self.kinds))), tuple(sorted(set(self.statuses))))

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

    area: AlertArea
    networks: list[ReachedNetwork]
    adjacent: list[NetworkShape]
    points: PointGrid
    inside_count: int  # located addresses inside the area
    in_network_count: int  # of those, inside a reached network
    inside_approximate: int  # of the addresses inside, those with an approximate position
    edge_ids: np.ndarray  # within EDGE_M of the edge
    edge_inside: np.ndarray  # for each edge id, whether it lies inside
    added: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    removed: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def network_ids(self) -> list[int]:
        """Ids of the networks reached."""
        return [r.network.id for r in self.networks]

    def inside(self, address_ids: Iterable[int]) -> np.ndarray:
        """For each address id, whether the address is inside the area (as adjusted)."""
        positions = self.points.find(address_ids)
        found = positions >= 0
        inside = np.zeros(len(positions), dtype=bool)
        inside[found] = self.area.covers(self.points, positions[found])
        inside |= np.isin(positions, self.added) & found
        return inside & ~np.isin(positions, self.removed)


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
    The addresses of cells wholly inside are counted cell by cell; only those of the cells on
    the area's edge are looked at one by one.
    """
    grid = networks.points
    chosen = [i for i in networks.candidates(area) if filters.accepts(networks.networks[i])]
    meets, touches = area.meets(networks.geoms[chosen])
    adjacent = [networks.networks[i] for i, t in zip(chosen, touches.tolist(), strict=True) if t]
    hit = [i for i, m in zip(chosen, meets.tolist(), strict=True) if m]
    is_hit = np.zeros(len(networks), dtype=bool)
    is_hit[hit] = True
    # Addresses inside: those of the cells wholly inside, and the tested ones of the edge cells,
    # changed by include (added when outside) and exclude (removed when inside; it wins).
    whole, edge_cells = area.split_cells(grid)
    tested = grid.positions(edge_cells)
    tested = tested[area.covers(grid, tested)]
    extra, drop = grid.find(include), grid.find(exclude)
    extra, drop = np.unique(extra[extra >= 0]), np.unique(drop[drop >= 0])
    changed = np.union1d(extra, drop)
    before = area.covers(grid, changed)
    after = (before | np.isin(changed, extra)) & ~np.isin(changed, drop)
    added, removed = changed[after & ~before], changed[before & ~after]

    def pairs(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # For each reached network, how many of the addresses it covers; how many addresses
        # some reached network covers.
        owner, network = networks.networks_at(positions)
        kept = is_hit[network]
        in_any = np.zeros(len(positions), dtype=bool)
        in_any[owner[kept]] = True
        counts = np.bincount(network[kept], minlength=len(networks))
        return counts, int(np.count_nonzero(in_any))

    # A network passing the filters that covers an address strictly inside the area has its
    # interior meet the area's: every such network of a whole cell is reached.
    counts = np.where(is_hit, networks.cell_counts(whole), 0)
    in_network = networks.cell_covered(whole, filters)
    for positions, sign in ((tested, 1), (added, 1), (removed, -1)):
        more, more_in_any = pairs(positions)
        counts += sign * more
        in_network += sign * more_in_any
    shares, shared_m2, perimeters = area.shares(networks.geoms[hit])
    # A network sharing only a sliver of boundary noise and no address is not reached.
    really = shares_area(shared_m2, counts[hit], shared_perimeter_m=perimeters)
    reached = [
        ReachedNetwork(networks.networks[i], round(float(share), 6), int(counts[i]))
        for i, share, kept in zip(hit, shares, really.tolist(), strict=True)
        if kept
    ]
    adjacent += [
        networks.networks[i] for i, kept in zip(hit, really.tolist(), strict=True) if not kept
    ]
    adjacent.sort(key=lambda network: network.id)
    edge_positions, edge_inside = area.near_edge(grid)
    order = np.argsort(grid.ids[edge_positions], kind="stable")
    return Reach(
        area=area,
        networks=reached,
        adjacent=adjacent,
        points=grid,
        inside_count=grid.count(whole) + len(tested) + len(added) - len(removed),
        in_network_count=in_network,
        inside_approximate=grid.count_approximate(whole)
        + int(np.count_nonzero(grid.approximate[tested]))
        + int(np.count_nonzero(grid.approximate[added]))
        - int(np.count_nonzero(grid.approximate[removed])),
        edge_ids=grid.ids[edge_positions][order],
        edge_inside=edge_inside[order],
        added=added,
        removed=removed,
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


class NetworkPeople:
    """Members and coordinators of every network, network by network (a read model)."""

    def __init__(self, members: Iterable[MemberRow], contacts: Iterable[ContactRow]) -> None:
        self._members: dict[int, list[MemberRow]] = {}
        self._contacts: dict[int, list[ContactRow]] = {}
        for member in members:
            self._members.setdefault(member.network_id, []).append(member)
        for contact in contacts:
            self._contacts.setdefault(contact.network_id, []).append(contact)

    def of(self, network_ids: Iterable[int]) -> tuple[list[MemberRow], list[ContactRow]]:
        """The members and the coordinators of the networks, each ordered by id."""
        ids = set(network_ids)
        members = [m for i in ids for m in self._members.get(i, ())]
        contacts = [c for i in ids for c in self._contacts.get(i, ())]
        return sorted(members, key=lambda m: m.id), sorted(contacts, key=lambda c: c.id)


class PlannedRecipient(NamedTuple):
    """One delivery to make: who, through which network, by which channel, and why.

    A named tuple: a preview plans a recipient per member and channel (thousands for a large
    area), and a frozen dataclass takes several times as long to make.
    """

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
    chosen = [m for m in members if m.network_id in network_ids]
    if scope == "area":
        inside = reached.inside(m.address_id for m in chosen)
        chosen = [m for m, ok in zip(chosen, inside.tolist(), strict=True) if ok]
    else:
        chosen = [m for m in chosen if not m.outside_area]
    return sorted(chosen, key=lambda m: m.id)


def plan_recipients(
    mode: str,
    reached: Reach,
    *,
    members: Iterable[MemberRow] = (),
    contacts: Iterable[ContactRow] = (),
    scope: str = "area",
    members_in: list[MemberRow] | None = None,
) -> list[PlannedRecipient]:
    """The exact recipient list: coordinators by e-mail (relay) or members by their channels.

    ``members_in``: what ``members_reached`` gave for these members and scope, when the caller
    has it already.
    """
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
    if members_in is None:
        members_in = members_reached(reached, members, scope=scope)
    for member in members_in:
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


def check_lengths(
    messages: dict[str, str], headline: dict[str, str] | None = None, *, sms: bool
) -> None:
    """Refuse texts longer than their channel carries, naming each field: e-mail text and
    subject always, and with ``sms`` (direct alerts: members may get an SMS or a call) the SMS
    of each language, prefix included, within ``SMS_MAX_SEGMENTS``."""
    problems = []
    for lang, text in messages.items():
        if len(text) > MESSAGE_MAX_CHARS:
            problems.append(f"messages.{lang}: {len(text)} characters, at most {MESSAGE_MAX_CHARS}")
        elif sms:
            segments = sms_info(render_sms(messages, lang)).segments
            if segments > SMS_MAX_SEGMENTS:
                problems.append(
                    f"messages.{lang}: the SMS needs {segments} segments, at most "
                    f"{SMS_MAX_SEGMENTS} for a direct alert"
                )
    for lang, text in (headline or {}).items():
        if len(text) > HEADLINE_MAX_CHARS:
            problems.append(
                f"headline.{lang}: {len(text)} characters, at most {HEADLINE_MAX_CHARS}"
            )
    if problems:
        raise MessageTooLong("message too long: " + "; ".join(problems))


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


def _band_holding(line: BaseGeometry, distance: float) -> BaseGeometry:
    """A band along ``line`` that holds every point within ``distance`` of it."""
    return line.buffer(distance / _BAND_FACTOR, quad_segs=_BAND_SEGMENTS)


def _band_within(line: BaseGeometry, distance: float) -> BaseGeometry:
    """A band along ``line`` whose points all lie within ``distance`` of it."""
    return line.buffer(distance * _BAND_FACTOR, quad_segs=_BAND_SEGMENTS)


def _covered(geom: BaseGeometry, grid: PointGrid) -> np.ndarray:
    """Positions in ``grid`` (increasing) that ``geom`` covers: the matching rule."""
    positions = grid.positions(grid.cells(geom.bounds))
    shapely.prepare(geom)
    return positions[shapely.intersects_xy(geom, grid.x[positions], grid.y[positions])]


def _disk_overlap(geometries: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    """The area of each (multi)polygon inside the disk of ``radius`` around ``centre``, exactly.

    Edge by edge, the signed area where the triangle (centre, edge) meets the disk: the parts of
    the edge inside the disk add a triangle, the parts outside a circular sector. Summed over a
    ring this is the area of the ring's interior inside the disk (signed by the ring's
    orientation); holes are subtracted.
    """
    polygons, owner = shapely.get_parts(geometries, return_index=True)
    rings, ring_polygon = shapely.get_rings(polygons, return_index=True)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    xy = xy - np.asarray(centre)
    same = ring_of[1:] == ring_of[:-1]  # consecutive vertices of one (closed) ring
    a, b, edge_ring = xy[:-1][same], xy[1:][same], ring_of[:-1][same]
    d = b - a
    qa = np.einsum("ij,ij->i", d, d)
    qb = 2.0 * np.einsum("ij,ij->i", a, d)
    qc = np.einsum("ij,ij->i", a, a) - radius * radius
    disc = qb * qb - 4.0 * qa * qc
    crosses = (disc > 0) & (qa > 0)  # the edge's line cuts the circle
    root = np.sqrt(np.where(crosses, disc, 0.0))
    half = np.where(crosses, 2.0 * qa, 1.0)
    # Where the edge enters and leaves the disk (0-1 along it); 0 when it never does.
    t1 = np.clip(np.where(crosses, (-qb - root) / half, 0.0), 0.0, 1.0)[:, None]
    t2 = np.clip(np.where(crosses, (-qb + root) / half, 0.0), 0.0, 1.0)[:, None]
    p1, p2 = a + t1 * d, a + t2 * d

    def cross(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]

    def sector(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        angle = np.arctan2(cross(p, q), np.einsum("ij,ij->i", p, q))
        return 0.5 * radius * radius * angle

    signed = sector(a, p1) + 0.5 * cross(p1, p2) + sector(p2, b)
    inside = np.bincount(edge_ring, weights=signed, minlength=len(rings))
    orientation = np.sign(np.bincount(edge_ring, weights=cross(a, b), minlength=len(rings)))
    exterior = np.ones(len(rings), dtype=bool)
    exterior[1:] = ring_polygon[1:] != ring_polygon[:-1]
    inside = inside * orientation * np.where(exterior, 1.0, -1.0)
    per_polygon = np.bincount(ring_polygon, weights=inside, minlength=len(polygons))
    return np.bincount(owner, weights=per_polygon, minlength=len(geometries))


def _runs(first: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The integers first[k], first[k] + 1, ... (lengths[k] of them) for every k, in order."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if len(ends) else 0) + np.repeat(first - ends + lengths, lengths)


def _sorted_find(sorted_values: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each value in ``sorted_values`` (clipped) and whether it is there."""
    if len(sorted_values) == 0:
        return np.zeros(len(values), dtype=np.int64), np.zeros(len(values), dtype=bool)
    index = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return index, sorted_values[index] == values


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
