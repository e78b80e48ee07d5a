"""Coverage, overlaps and uncovered neighbourhoods, computed from arrays and shapely geometries.

Pure functions: the service loads the stored facts (the reference area of each address, the
address-network matches, the network areas) and these turn them into figures. Counting uses
``np.bincount`` over address-to-area indices; overlaps an STRtree self-query on the network areas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from bingeo.matching import AddressPoints, match

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
]
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
    pairs = match(points, list(enumerate(areas)))
    area_of = np.full(len(points), -1, dtype=np.int64)
    if not len(pairs):
        return area_of
    sorter = np.argsort(points.ids, kind="stable")
    position = sorter[np.searchsorted(points.ids, pairs.address_ids, sorter=sorter)]
    # Highest area first, so the lowest one is the write that stays.
    order = np.argsort(-pairs.network_ids, kind="stable")
    area_of[position[order]] = pairs.network_ids[order]
    return area_of


def coverage_table(
    area_of: np.ndarray,
    n_areas: int,
    matches: Matches,
    network_kinds: np.ndarray,
    network_members: np.ndarray,
) -> pd.DataFrame:
    """Figures per area (one row per area position) from the area of each address.

    ``area_of`` gives each address's area position (-1: outside the scope), ``matches`` which
    address each counted network covers, ``network_kinds`` and ``network_members`` the kind and
    member count of each network. An address counts as covered by a kind when one network of
    that kind covers it. Members of a network are spread over the areas in proportion to its
    addresses there (members per 1,000 addresses is an aggregate, not a count of people).
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

    pair_area = area_of[matches.address] if len(matches.address) else np.empty(0, dtype=np.int64)
    kept = pair_area >= 0
    n_networks = len(network_kinds)
    keys = matches.network[kept].astype(np.int64) * n_areas + pair_area[kept]
    unique, counts = np.unique(keys, return_counts=True)
    network_of, area_at = np.divmod(unique, n_areas) if n_areas else (unique, unique)
    networks = np.bincount(area_at, minlength=n_areas)
    # Members spread by the share of each network's matched addresses lying in each area.
    network_total = np.bincount(matches.network, minlength=n_networks)
    weights = np.zeros(len(unique))
    has = network_total[network_of] > 0
    weights[has] = network_members[network_of[has]] * counts[has] / network_total[network_of[has]]
    members = np.bincount(area_at, weights=weights, minlength=n_areas)

    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(addresses > 0, covered / np.maximum(addresses, 1), np.nan)
        per_1000 = np.where(addresses > 0, 1000 * members / np.maximum(addresses, 1), np.nan)
    return pd.DataFrame(
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
        },
        columns=COVERAGE_COLUMNS,
    )


def totals(table: pd.DataFrame, matches: Matches, area_of: np.ndarray, members: float) -> dict:
    """Scope totals of a coverage table (networks counted once, not once per area)."""
    addresses = int(table["addresses"].sum())
    covered = int(table["covered"].sum())
    in_scope = area_of[matches.address] >= 0 if len(matches.address) else np.empty(0, bool)
    return {
        "addresses": addresses,
        "covered": covered,
        "covered_bin": int(table["covered_bin"].sum()),
        "covered_bin_z": int(table["covered_bin_z"].sum()),
        "uncovered": addresses - covered,
        "share_covered": covered / addresses if addresses else None,
        "networks": int(len(np.unique(matches.network[in_scope]))),
        "members": float(members),
        "members_per_1000": 1000 * float(members) / addresses if addresses else None,
    }


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
    order = np.lexsort((matches.network, matches.address))
    address = matches.address[order]
    network = matches.network[order]
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
        net, area = tree.query(networks, predicate="intersects")
        # Most networks lie wholly in one area: a prepared containment test spares the
        # intersection there.
        shapely.prepare(areas)
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


def rank_gaps(table: pd.DataFrame, *, max_covered_share: float) -> pd.DataFrame:
    """Areas with addresses and at most ``max_covered_share`` covered, most uncovered first."""
    share = table["share_covered"]
    chosen = table[(table["addresses"] > 0) & (share <= max_covered_share)]
    ranked = chosen.sort_values(["uncovered", "addresses"], ascending=False, kind="stable")
    return ranked.assign(rank=np.arange(1, len(ranked) + 1))


def adjacent_clusters(geometries: np.ndarray, *, adjacency_m: float) -> np.ndarray:
    """A cluster label per geometry: those within ``adjacency_m`` of each other, transitively."""
    geometries = np.asarray(geometries, dtype=object)
    n = len(geometries)
    parent = np.arange(n)
    if n:
        tree = shapely.STRtree(geometries)
        left, right = tree.query(geometries, predicate="dwithin", distance=adjacency_m)
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            root_a, root_b = _root(parent, a), _root(parent, b)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
    roots = np.array([_root(parent, i) for i in range(n)], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)
    return labels


def _root(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = int(parent[i])
    return i
