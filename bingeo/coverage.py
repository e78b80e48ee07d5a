"""Coverage, overlaps and uncovered neighbourhoods, computed from arrays and shapely geometries.

Pure functions: the service loads the stored facts (the reference area of each address, the
address-network matches, the network areas) and these turn them into figures. Counting uses
``np.bincount`` over address-to-area indices; overlaps an STRtree self-query on the network areas.
Candidate zones for new networks are made of uncovered areas, split and merged to the size of a
real network; member counts from 1 to 4 are suppressed for roles without member rights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from bingeo.matching import AddressPoints
from bingeo.privacy import SUPPRESS_BELOW, people_count

KINDS = ("BIN", "BIN-Z")
COVERAGE_COLUMNS = [
    "addresses",
    "covered",
    "covered_bin",
    "covered_bin_z",
    "uncovered",
    "share_covered",
    "networks",
    "members",
    "members_per_1000",
    "addresses_approximate",
    "covered_approximate",
]
_MAX_MARKS = 64_000_000  # bytes of the (network, area) mark matrix before sorting instead
OVERLAP_COLUMNS = [
    "network_a",
    "network_b",
    "overlap_m2",
    "share_a",
    "share_b",
    "shared_addresses",
]


@dataclass(frozen=True)
class Matches:
    """Address-network matches of the networks that count, as parallel arrays.

    ``network`` holds positions in the caller's network list, ``address`` positions in its
    address arrays.
    """

    network: np.ndarray
    address: np.ndarray


def assign_areas(points: AddressPoints, areas: np.ndarray) -> np.ndarray:
    """Position in ``areas`` of the area holding each point, aligned with ``points.ids``.

    -1 marks a point outside every area.
    The boundary counts as inside (as ``ST_Covers``); a point on the edge of two areas goes to
    the first of them, so every address is counted once.
    """
    areas = np.asarray(areas, dtype=object)
    area_of = np.full(len(points), -1, dtype=np.int64)
    if not len(points) or not len(areas):
        return area_of
    grid = _PointGrid(points.x, points.y, _cell_size(areas))
    # Last area first: where two areas hold a point, the lower position writes last and stays.
    for position in range(len(areas) - 1, -1, -1):
        area = areas[position]
        if area is None or area.is_empty:
            continue
        candidates = grid.candidates(area.bounds)
        if not len(candidates):
            continue
        shapely.prepare(area)
        inside = shapely.intersects_xy(area, points.x[candidates], points.y[candidates])
        area_of[candidates[inside]] = position
    return area_of


@dataclass(frozen=True)
class AreaFigures:
    """Coverage figures of every area of a level (``table``, one row per area position), and
    which networks cover addresses in which area (``network_of``, ``area_at``), for totals."""

    table: pd.DataFrame
    network_of: np.ndarray
    area_at: np.ndarray

    def select(self, positions: np.ndarray) -> tuple[pd.DataFrame, dict]:
        """The rows of the areas at ``positions`` and their totals (networks counted once)."""
        table = self.table.iloc[positions].reset_index(drop=True)
        addresses = int(table["addresses"].sum())
        covered = int(table["covered"].sum())
        members = int(table["members"].sum())
        chosen = np.zeros(len(self.table), dtype=bool)
        chosen[positions] = True
        networks = np.unique(self.network_of[chosen[self.area_at]]) if len(self.area_at) else []
        totals = {
            "addresses": addresses,
            "covered": covered,
            "covered_bin": int(table["covered_bin"].sum()),
            "covered_bin_z": int(table["covered_bin_z"].sum()),
            "uncovered": addresses - covered,
            "share_covered": covered / addresses if addresses else None,
            "networks": len(networks),
            "members": members,
            "members_per_1000": 1000 * members / addresses if addresses else None,
            "addresses_approximate": int(table["addresses_approximate"].sum()),
            "covered_approximate": int(table["covered_approximate"].sum()),
        }
        return table, totals


def coverage_table(
    area_of: np.ndarray,
    n_areas: int,
    matches: Matches,
    network_kinds: np.ndarray,
    member_areas: np.ndarray,
    approximate: np.ndarray | None = None,
) -> AreaFigures:
    """Figures per area (one row per area position) from the area of each address.

    ``approximate`` (aligned with ``area_of``; None: no address is) flags the addresses with
    an approximate position: they count in every figure, and apart in ``addresses_approximate``
    and ``covered_approximate``.

    ``area_of`` gives each address's area position (-1: in no area), ``matches`` which address
    each counted network covers, ``network_kinds`` the kind of each network and
    ``member_areas`` the area position of the address of each member of a counted network. An
    address counts as covered by a kind when one network of that kind covers it; ``members``
    counts the members registered at an address in the area (exact, not an estimate).
    """
    n_addresses = len(area_of)
    inside = area_of >= 0
    addresses = np.bincount(area_of[inside], minlength=n_areas)
    covered_by: dict[str, np.ndarray] = {}
    any_flag = np.zeros(n_addresses, dtype=bool)
    # Kinds as small integers: comparing strings per match is slow.
    kind_codes = np.array([KINDS.index(k) if k in KINDS else -1 for k in network_kinds], int)
    pair_kinds = kind_codes[matches.network] if len(kind_codes) else np.empty(0, int)
    for code, kind in enumerate(KINDS):
        flag = np.zeros(n_addresses, dtype=bool)
        flag[matches.address[pair_kinds == code]] = True
        any_flag |= flag
        covered_by[kind] = np.bincount(area_of[inside & flag], minlength=n_areas)
    covered = np.bincount(area_of[inside & any_flag], minlength=n_areas)
    approximate = (
        np.zeros(n_addresses, dtype=bool) if approximate is None else np.asarray(approximate, bool)
    )
    addresses_approximate = np.bincount(area_of[inside & approximate], minlength=n_areas)
    covered_approximate = np.bincount(area_of[inside & approximate & any_flag], minlength=n_areas)
    network_of, area_at = _network_areas(area_of, n_areas, matches, len(network_kinds))
    networks = np.bincount(area_at, minlength=n_areas)
    member_areas = np.asarray(member_areas, dtype=np.int64)
    members = np.bincount(member_areas[member_areas >= 0], minlength=n_areas)

    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(addresses > 0, covered / np.maximum(addresses, 1), np.nan)
        per_1000 = np.where(addresses > 0, 1000 * members / np.maximum(addresses, 1), np.nan)
    table = pd.DataFrame(
        {
            "addresses": addresses,
            "covered": covered,
            "covered_bin": covered_by["BIN"],
            "covered_bin_z": covered_by["BIN-Z"],
            "uncovered": addresses - covered,
            "share_covered": share,
            "networks": networks,
            "members": members,
            "members_per_1000": per_1000,
            "addresses_approximate": addresses_approximate,
            "covered_approximate": covered_approximate,
        },
        columns=COVERAGE_COLUMNS,
    )
    return AreaFigures(table, network_of, area_at)


def overlapping_pairs(geometries: np.ndarray, *, min_area_m2: float) -> pd.DataFrame:
    """Pairs (positions ``a`` < ``b``) of areas overlapping by more than ``min_area_m2``.

    Areas that only touch (shared boundary: overlap area 0) or overlap by a sliver no larger
    than ``min_area_m2`` are left out. Columns: a, b, overlap_m2, share_a, share_b, geometry.
    """
    geometries = np.asarray(geometries, dtype=object)
    tree = shapely.STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.intersection(geometries[left], geometries[right])
    area = shapely.area(shared)
    keep = area > min_area_m2
    left, right, shared, area = left[keep], right[keep], shared[keep], area[keep]
    areas = shapely.area(geometries)
    return pd.DataFrame(
        {
            "a": left,
            "b": right,
            "overlap_m2": area,
            "share_a": area / areas[left],
            "share_b": area / areas[right],
            "geometry": shared,
        }
    )


def shared_address_counts(matches: Matches) -> dict[tuple[int, int], int]:
    """Number of addresses covered by both networks, per pair of network positions (a < b)."""
    if not len(matches.address):
        return {}
    # Only addresses covered more than once make pairs: drop the others before sorting.
    if matches.address.max() < 4 * len(matches.address) + (1 << 20):
        shared = np.bincount(matches.address)[matches.address] > 1
    else:
        _, inverse, counts = np.unique(matches.address, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
    order = np.lexsort((matches.network[shared], matches.address[shared]))
    address = matches.address[shared][order]
    network = matches.network[shared][order]
    firsts: list[np.ndarray] = []
    seconds: list[np.ndarray] = []
    # Addresses sorted, networks sorted within each: an address covered by k networks gives
    # its pairs at offsets 1 .. k-1.
    offset = 1
    while offset < len(address):
        same = address[offset:] == address[:-offset]
        if not same.any():
            break
        firsts.append(network[:-offset][same])
        seconds.append(network[offset:][same])
        offset += 1
    if not firsts:
        return {}
    a = np.concatenate(firsts).astype(np.int64)
    b = np.concatenate(seconds).astype(np.int64)
    width = int(max(a.max(), b.max())) + 1
    keys, counts = np.unique(a * width + b, return_counts=True)
    return {(int(k // width), int(k % width)): int(c) for k, c in zip(keys, counts, strict=True)}


def border_crossings(
    networks: np.ndarray, areas: np.ndarray, *, min_area_m2: float
) -> list[tuple[list[int], float]]:
    """For each network: the areas it lies in by more than ``min_area_m2``, and its area outside.

    A network crosses a border when it lies in more than one area, or partly outside them all.
    """
    networks = np.asarray(networks, dtype=object)
    areas = np.asarray(areas, dtype=object)
    result: list[tuple[list[int], float]] = [([], 0.0) for _ in range(len(networks))]
    if len(areas):
        tree = shapely.STRtree(areas)
        # Box candidates, then tests with the areas prepared (they are few and large; the
        # tree's own predicate would prepare the networks instead).
        net, area = tree.query(networks)
        shapely.prepare(areas)
        meets = shapely.intersects(areas[area], networks[net])
        net, area = net[meets], area[meets]
        # Most networks lie wholly in one area: a prepared containment test spares the
        # intersection there.
        within = shapely.contains(areas[area], networks[net])
        inside = shapely.area(networks[net])
        partial = ~within
        inside[partial] = shapely.area(
            shapely.intersection(networks[net][partial], areas[area][partial])
        )
    else:
        net = area = np.empty(0, dtype=np.int64)
        inside = np.empty(0)
    covered = np.bincount(net, weights=inside, minlength=len(networks))
    for n, a, m2 in zip(net, area, inside, strict=True):
        if m2 > min_area_m2:
            result[n][0].append(int(a))
    totals_m2 = shapely.area(networks)
    return [
        (sorted(codes), max(float(totals_m2[i] - covered[i]), 0.0))
        for i, (codes, _) in enumerate(result)
    ]


def uncovered_areas(table: pd.DataFrame, *, max_covered_share: float) -> np.ndarray:
    """Which areas hold addresses and have at most ``max_covered_share`` of them covered."""
    share = table["share_covered"]
    return ((table["addresses"] > 0) & (share <= max_covered_share)).to_numpy()


def rank_gaps(table: pd.DataFrame, *, max_covered_share: float) -> pd.DataFrame:
    """Areas with addresses and at most ``max_covered_share`` covered, most uncovered first."""
    chosen = table[uncovered_areas(table, max_covered_share=max_covered_share)]
    ranked = chosen.sort_values(["uncovered", "addresses"], ascending=False, kind="stable")
    return ranked.assign(rank=np.arange(1, len(ranked) + 1))


def suppress_counts(counts: Sequence[int]) -> tuple[list[int | str], int | str]:
    """Member counts as shown to a role without member rights: the cells and their total.

    A cell from 1 to 4 becomes ``SUPPRESSED`` ("< 5", ``bingeo.privacy.people_count``; 0 names
    nobody and is shown). The total stays exact unless it would pin the suppressed cells down:
    when exactly one cell is suppressed (the total minus the others gives it back), or when the
    suppressed cells are all 1 or all 4. Such a total is given as a lower bound, ``"≥ N"``, N
    being the exact cells' sum (at least 5); a total from 1 to 4 is ``SUPPRESSED`` itself.
    """
    values = np.asarray(counts, dtype=np.int64)
    cells = [people_count(int(v), exact=False) for v in values]
    hidden = values[np.array([isinstance(c, str) for c in cells], dtype=bool)]
    total = int(values.sum())
    if total < SUPPRESS_BELOW:
        return cells, people_count(total, exact=False)
    pinned = len(hidden) == 1 or (
        len(hidden) > 1 and hidden.sum() in (len(hidden), (SUPPRESS_BELOW - 1) * len(hidden))
    )
    if not pinned:
        return cells, total
    return cells, f"≥ {max(total - int(hidden.sum()), SUPPRESS_BELOW)}"


@dataclass(frozen=True)
class Candidate:
    """A candidate zone for a new network.

    ``parts`` are (unit position, piece) pairs: a piece is "" for a whole unit, else the path
    of halves ("0", "01", ...) cut out of a unit too large for one network. ``rows`` are the
    positions of its addresses in the caller's arrays; ``group`` is the group (municipality)
    of its units.
    """

    group: str
    parts: tuple[tuple[int, str], ...]
    geometry: shapely.Geometry
    rows: np.ndarray


def candidate_zones(
    units: np.ndarray,
    groups: Sequence[str],
    address_unit: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    min_addresses: int,
    max_addresses: int,
    adjacency_m: float,
) -> list[Candidate]:
    """Candidate zones made of the ``units`` (areas) holding addresses, each of one group.

    ``address_unit`` gives the unit position of each address (-1: none), ``x``/``y`` its
    position. A unit holding more than ``max_addresses`` is cut in compact pieces by straight
    lines (recursive bisection of its addresses along their main axis). Units within
    ``adjacency_m`` of each other and of the same group are joined; a joined group holding
    more than ``max_addresses`` is split by recursive bisection of its units' centres (weighted
    by addresses) into parts of at most ``max_addresses``; parts below ``min_addresses`` are
    merged into the nearest adjacent part they fit with. A part that fits with none stays small.
    """
    units = shapely.make_valid(np.asarray(units, dtype=object))
    address_unit = np.asarray(address_unit, dtype=np.int64)
    order = np.argsort(address_unit, kind="stable")
    starts = np.searchsorted(address_unit[order], np.arange(len(units) + 1))
    nodes: list[tuple[int, str, shapely.Geometry, np.ndarray]] = []
    for unit in range(len(units)):
        rows = order[starts[unit] : starts[unit + 1]]
        if len(rows):
            nodes.extend(
                (unit, path, geometry, part)
                for path, geometry, part in _bisect_unit(units[unit], x, y, rows, max_addresses)
            )
    if not nodes:
        return []
    geometries = np.array([n[2] for n in nodes], dtype=object)
    weights = np.array([len(n[3]) for n in nodes], dtype=np.int64)
    centres = np.array([(x[n[3]].mean(), y[n[3]].mean()) for n in nodes])
    node_groups = [str(groups[n[0]]) for n in nodes]
    neighbours: list[set[int]] = [set() for _ in nodes]
    left, right = shapely.STRtree(geometries).query(
        geometries, predicate="dwithin", distance=adjacency_m
    )
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a != b and node_groups[a] == node_groups[b]:
            neighbours[a].add(b)
    parts: list[list[int]] = []
    for component in _components(range(len(nodes)), neighbours):
        parts.extend(_split(component, neighbours, weights, centres, max_addresses))
    parts = _merge_small(parts, neighbours, weights, centres, min_addresses, max_addresses)
    candidates = []
    for part in parts:
        chosen = sorted(part, key=lambda n: (nodes[n][0], nodes[n][1]))
        candidates.append(
            Candidate(
                group=node_groups[chosen[0]],
                parts=tuple((nodes[n][0], nodes[n][1]) for n in chosen),
                geometry=_polygonal(shapely.union_all(geometries[chosen])),
                rows=np.sort(np.concatenate([nodes[n][3] for n in chosen])),
            )
        )
    return candidates


def _bisect_unit(
    geometry: shapely.Geometry, x: np.ndarray, y: np.ndarray, rows: np.ndarray, limit: int
) -> Iterator[tuple[str, shapely.Geometry, np.ndarray]]:
    """(piece path, piece, its rows): the unit cut in halves until each holds ``limit`` rows
    at most, along the main axis of its addresses, between two addresses."""
    pending = [("", geometry, rows)]
    while pending:
        path, piece, part = pending.pop()
        cut = _cut(x[part], y[part], limit) if len(part) > limit else None
        if cut is None:
            yield path, piece, part
            continue
        below, half_plane = cut
        low = _polygonal(shapely.intersection(piece, half_plane))
        high = _polygonal(shapely.difference(piece, half_plane))
        pending.append((path + "1", high, part[~below]))
        pending.append((path + "0", low, part[below]))


def _share(total: float, limit: float) -> float:
    """Where to cut a set of ``total`` into parts of at most ``limit``: at a whole number of
    parts, so that both sides split evenly later."""
    parts = math.ceil(total / limit)
    return (parts // 2) / parts


def _cut(xs: np.ndarray, ys: np.ndarray, limit: int) -> tuple[np.ndarray, shapely.Geometry] | None:
    """The points below a straight cut across their main axis, and the half plane below it.

    The cut splits the points into a whole number of parts of at most ``limit`` (see
    ``_share``), through the widest gap between points near that quantile, so that no point
    lies on it. None when all points share one position.
    """
    points = np.column_stack([xs, ys])
    centre = points.mean(axis=0)
    spread = np.cov((points - centre).T) if len(points) > 1 else np.eye(2)
    axis = np.linalg.eigh(spread)[1][:, -1]
    along = (points - centre) @ axis
    ordered = np.sort(along)
    n = len(ordered)
    parts = math.ceil(n / limit)
    target = int(round(_share(n, limit) * n))
    margin = max(1, n // 20)
    # Below the cut at most (parts // 2) * limit points, above it the rest of the parts' room.
    low, high = max(1, n - (parts - parts // 2) * limit), min(n - 1, (parts // 2) * limit)
    windows = ((max(low, target - margin), min(high, target + margin)), (low, high), (1, n - 1))
    for lo, hi in windows:
        if lo > hi:
            continue
        gaps = ordered[lo : hi + 1] - ordered[lo - 1 : hi]
        if len(gaps) and gaps.max() > 0:
            at = lo + int(np.argmax(gaps))
            level = (ordered[at - 1] + ordered[at]) / 2
            break
    else:
        return None
    across = np.array([-axis[1], axis[0]])
    reach = float(np.ptp(points, axis=0).max()) + 1e5
    base = centre + axis * level
    far = centre + axis * (level - reach)
    half_plane = shapely.Polygon(
        [base + across * reach, base - across * reach, far - across * reach, far + across * reach]
    )
    return along < level, half_plane


def _components(
    nodes: Iterator[int] | Sequence[int], neighbours: list[set[int]]
) -> list[list[int]]:
    """Connected parts of ``nodes`` through ``neighbours`` (within ``nodes`` only)."""
    inside = set(nodes)
    seen: set[int] = set()
    found = []
    for start in sorted(inside):
        if start in seen:
            continue
        seen.add(start)
        stack, component = [start], []
        while stack:
            node = stack.pop()
            component.append(node)
            for other in neighbours[node]:
                if other in inside and other not in seen:
                    seen.add(other)
                    stack.append(other)
        found.append(sorted(component))
    return found


def _split(
    nodes: list[int],
    neighbours: list[set[int]],
    weights: np.ndarray,
    centres: np.ndarray,
    limit: int,
) -> list[list[int]]:
    """Connected parts of at most ``limit`` addresses (where nodes allow): recursive bisection
    of the nodes' centres along their weighted main axis."""
    total = int(weights[nodes].sum())
    if total <= limit or len(nodes) == 1:
        return [nodes]
    chosen = np.array(nodes)
    w = weights[chosen].astype(float)
    points = centres[chosen]
    centre = np.average(points, axis=0, weights=w)
    spread = np.cov((points - centre).T, aweights=w) if len(chosen) > 2 else None
    if spread is None or not np.isfinite(spread).all():
        axis = points[-1] - points[0]
        axis = axis / (np.hypot(*axis) or 1.0)
    else:
        axis = np.linalg.eigh(spread)[1][:, -1]
    order = np.argsort((points - centre) @ axis, kind="stable")
    cumulative = np.cumsum(w[order])
    at = int(np.argmin(np.abs(cumulative[:-1] - _share(total, limit) * total))) + 1
    parts = []
    for side in (chosen[order[:at]], chosen[order[at:]]):
        for component in _components(side.tolist(), neighbours):
            parts.extend(_split(component, neighbours, weights, centres, limit))
    return parts


def _merge_small(
    parts: list[list[int]],
    neighbours: list[set[int]],
    weights: np.ndarray,
    centres: np.ndarray,
    low: int,
    high: int,
) -> list[list[int]]:
    """Each part below ``low`` addresses merged into the adjacent part with the nearest centre
    that it fits with (at most ``high`` together), smallest parts first."""
    owner = {node: i for i, part in enumerate(parts) for node in part}
    members = {i: list(part) for i, part in enumerate(parts)}
    total = {i: int(weights[part].sum()) for i, part in enumerate(parts)}

    def centre(i: int) -> np.ndarray:
        return np.average(centres[members[i]], axis=0, weights=weights[members[i]])

    stuck: set[int] = set()
    while True:
        small = [i for i in members if total[i] < low and i not in stuck]
        if not small:
            break
        part = min(small, key=lambda i: (total[i], min(members[i])))
        around = {owner[m] for n in members[part] for m in neighbours[n]} - {part}
        fits = [i for i in around if total[i] + total[part] <= high]
        if not fits:
            stuck.add(part)
            continue
        here = centre(part)
        into = min(fits, key=lambda i: (float(np.hypot(*(centre(i) - here))), min(members[i])))
        for node in members[part]:
            owner[node] = into
        members[into] += members.pop(part)
        total[into] += total.pop(part)
    return [sorted(part) for part in members.values()]


def _polygonal(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    """The polygons of a geometry (an intersection may add lines or points) as a MultiPolygon."""
    polygons = [
        part
        for part in shapely.get_parts(shapely.make_valid(geometry))
        if part.geom_type in ("Polygon", "MultiPolygon")
    ]
    flat = [p for part in polygons for p in shapely.get_parts(part)]
    return shapely.MultiPolygon(flat)


class _PointGrid:
    """Points bucketed in square cells, so the points in a box are a few contiguous slices."""

    def __init__(self, x: np.ndarray, y: np.ndarray, cell_m: float) -> None:
        self.x0, self.y0, self.cell_m = float(x.min()), float(y.min()), cell_m
        column = ((x - self.x0) // cell_m).astype(np.int64)
        row = ((y - self.y0) // cell_m).astype(np.int64)
        self.columns, self.rows = int(column.max()) + 1, int(row.max()) + 1
        cell = column * self.rows + row
        self.order = np.argsort(cell, kind="stable")
        self.starts = np.searchsorted(cell[self.order], np.arange(self.columns * self.rows + 1))

    def candidates(self, bounds: tuple[float, float, float, float]) -> np.ndarray:
        """Positions of the points in the cells the closed box touches."""
        minx, miny, maxx, maxy = bounds
        first_column = max(int((minx - self.x0) // self.cell_m), 0)
        last_column = min(int((maxx - self.x0) // self.cell_m), self.columns - 1)
        first_row = max(int((miny - self.y0) // self.cell_m), 0)
        last_row = min(int((maxy - self.y0) // self.cell_m), self.rows - 1)
        if first_column > last_column or first_row > last_row:
            return np.empty(0, dtype=np.int64)
        # Within one column the cells of a row range are contiguous in the sorted order.
        base = np.arange(first_column, last_column + 1) * self.rows
        starts = self.starts[base + first_row]
        stops = self.starts[base + last_row + 1]
        return np.concatenate([self.order[a:b] for a, b in zip(starts, stops, strict=True)])


def _cell_size(areas: np.ndarray) -> float:
    # About half the typical area's width: a few cells per area, few points outside it.
    bounds = shapely.bounds(areas)
    widths = np.nanmax(
        np.column_stack([bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]]), 1
    )
    widths = widths[np.isfinite(widths)]
    return float(np.clip(np.median(widths) / 2, 100.0, 5000.0)) if len(widths) else 1000.0


def _network_areas(
    area_of: np.ndarray, n_areas: int, matches: Matches, n_networks: int
) -> tuple[np.ndarray, np.ndarray]:
    """(network position, area position) of every network covering an address in an area."""
    pair_area = area_of[matches.address] if len(matches.address) else np.empty(0, np.int64)
    kept = pair_area >= 0
    network, area = matches.network[kept].astype(np.int64), pair_area[kept]
    if n_networks * n_areas <= _MAX_MARKS:
        # A mark per (network, area) is cheaper than sorting millions of matches.
        marks = np.zeros((n_networks, n_areas), dtype=bool)
        marks[network, area] = True
        network_of, area_at = np.nonzero(marks)
        return network_of, area_at
    network_of, area_at = np.divmod(np.unique(network * n_areas + area), n_areas)
    return network_of, area_at
