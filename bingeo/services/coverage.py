"""Coverage, overlaps and uncovered neighbourhoods of a scope, under the access rules.

A scope is one police zone, one municipality or the whole country. Figures are aggregates
(counts, shares, members per 1,000 addresses): reading them needs ``read_aggregates`` on the
scope, never access to personal data. Callers without ``read_personal`` on the scope (analysts,
planners) get member counts from 1 to 4 as "< 5" (``bingeo.coverage.suppress_counts``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, func, select

from bingeo import coverage as core
from bingeo import maps
from bingeo.access import WHOLE, Action, Actor, Target, allowed
from bingeo.db import addresses as address_repo
from bingeo.db import coverage as coverage_repo
from bingeo.db import matching as match_repo
from bingeo.db.models import SRID, AreaLevel, NetworkStatus
from bingeo.errors import InvalidInput, NotFound
from bingeo.files import decimal_id
from bingeo.geometry import GEOJSON_EPSG
from bingeo.matching import AddressPoints, Pairs
from bingeo.networks import MIN_SHARED_M2, shares_area
from bingeo.privacy import people_count
from bingeo.services import planning as planning_service
from bingeo.services.audit import guard
from bingeo.services.networks import network_target
from bingeo.settings import Settings

_REFRESH_LOCK = 0x62696E67  # advisory lock key: one refresh of address_areas at a time
# Levels whose areas lie within one municipality: candidate zones are made of them.
GAP_LEVELS = (AreaLevel.sector, AreaLevel.wijk, AreaLevel.deelgemeente, AreaLevel.municipality)
_CANDIDATE_ID = re.compile(r"^(\d{5})-(sector|wijk|deelgemeente|municipality)-([0-9a-f]{10})$")
MAIN_STREETS = 3
CANDIDATE_COLUMNS = [
    "rank",
    "id",
    "name",
    "wijk",
    "streets",
    "municipality",
    "areas",
    "codes",
    "addresses",
    "uncovered",
    "distance_m",
    "area_m2",
    "small",
]


@dataclass(frozen=True)
class Scope:
    """A resolved scope: its municipalities and zones (None: the whole country)."""

    zone: str | None
    municipality: str | None
    nis_codes: tuple[str, ...] | None
    zone_codes: tuple[str, ...] | None
    target: Target

    def describe(self) -> str:
        """The scope as text, e.g. ``police zone ipz93``."""
        if self.zone:
            return f"police zone {self.zone}"
        if self.municipality:
            return f"municipality {self.municipality}"
        return "Belgium"


@dataclass(eq=False)
class CoverageResult:
    """Figures per reference area (``areas``, EPSG:31370) and for the whole scope.

    Shared by the requests of the scope while the data is unchanged: read it, never modify it.
    """

    scope: Scope
    level: AreaLevel
    include_inactive: bool
    areas: gpd.GeoDataFrame
    totals: dict
    networks: gpd.GeoDataFrame = field(repr=False)
    levels: tuple[str, ...] = ()  # the levels with areas in the scope, finest first
    suppressed: bool = False  # member counts from 1 to 4 shown as "< 5"


@dataclass
class OverlapResult:
    """Overlapping network pairs and networks crossing municipality or police-zone borders."""

    scope: Scope
    pairs: gpd.GeoDataFrame
    crossings: gpd.GeoDataFrame
    min_overlap_m2: float


@dataclass
class GapResult:
    """Uncovered areas, ranked, and candidate zones for new networks made of them, ranked
    (``zones``: columns ``CANDIDATE_COLUMNS``)."""

    scope: Scope
    level: AreaLevel
    areas: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame


def resolve_scope(engine: Engine, *, zone: str | None, municipality: str | None) -> Scope:
    """The municipalities and zones of a scope given by zone code, NIS code or neither."""
    if zone and municipality:
        raise InvalidInput("give a police zone or a municipality, not both")
    if not zone and not municipality:
        return Scope(None, None, None, None, WHOLE)
    with engine.connect() as connection:
        if zone:
            nis_codes = coverage_repo.zone_municipalities(connection, zone)
            if not nis_codes and not _area_exists(connection, AreaLevel.police_zone, zone):
                raise NotFound(f"no police zone {zone}")
            target = Target(police_zone_codes=frozenset([zone]))
            return Scope(zone, None, tuple(nis_codes), (zone,), target)
        zones = coverage_repo.zones_of(connection, municipality)
        if not zones and not _area_exists(connection, AreaLevel.municipality, municipality):
            raise NotFound(f"no municipality {municipality}")
    target = Target(nis_codes=frozenset([municipality]), police_zone_codes=frozenset(zones))
    return Scope(None, municipality, (municipality,), tuple(zones), target)


def refresh_address_areas(engine: Engine, level: AreaLevel | str, *, force: bool = False) -> bool:
    """Recompute the stored area of each address of ``level`` if the areas or addresses changed.

    Returns whether it recomputed. Imports keep the table current themselves
    (``refresh_after_import``); this catches writes that went around them.
    """
    level = AreaLevel(level)
    with engine.connect() as connection:
        current = coverage_repo.fingerprint(connection, level)
        state = coverage_repo.stored_state(connection, level)
        if not force and state is not None and state[0] == current:
            return False
    with engine.begin() as connection:
        connection.execute(select(func.pg_advisory_xact_lock(_REFRESH_LOCK)))
        current = coverage_repo.fingerprint(connection, level)
        state = coverage_repo.stored_state(connection, level)
        if not force and state is not None and state[0] == current:
            return False  # another process refreshed it while this one waited
        _refresh_level(connection, level, match_repo.load_points(connection))
    return True


def refresh_after_import(connection: Connection, levels: Sequence[AreaLevel] = tuple(AreaLevel)):
    """Bring the stored area of each address up to date for ``levels``, in the caller's
    transaction (an import of addresses or areas); only the rows that change are written."""
    connection.execute(select(func.pg_advisory_xact_lock(_REFRESH_LOCK)))
    # Without areas there is nothing to place: an import into a bare database (a first
    # national import) does not read its millions of points back for nothing.
    levels = [AreaLevel(level) for level in levels]
    levels = [level for level in levels if coverage_repo.level_in_use(connection, level)]
    if not levels:
        return
    points = match_repo.load_points(connection)
    for level in levels:
        _refresh_level(connection, level, points)


def scope_levels(engine: Engine, scope: Scope) -> tuple[tuple[AreaLevel, ...], AreaLevel]:
    """The levels with areas in the scope (finest first) and the default one: the finest level
    whose areas reach every municipality of the scope that has areas of any level below the
    police zone (Gent: sector; Bierbeek, without sector polygons: wijk)."""
    with engine.connect() as connection:
        found = coverage_repo.levels_in_scope(
            connection, nis_codes=scope.nis_codes, zone_codes=scope.zone_codes
        )
    levels = tuple(level for level in AreaLevel if level in found)
    known = set().union(*(codes for level, codes in found.items() if level in GAP_LEVELS))
    for level in levels:
        if level == AreaLevel.police_zone or found[level] >= known:
            return levels, level
    return levels, AreaLevel.sector


def coverage(
    engine: Engine,
    actor: Actor,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    level: AreaLevel | str | None = None,
    include_inactive: bool = False,
) -> CoverageResult:
    """Coverage figures per reference area of ``level`` in the scope, and for the scope.

    ``level`` None is the default of ``scope_levels``. ``members`` counts the members of the
    counted networks registered at an address in the area (a member of two networks counts twice);
    ``members_per_1000`` is that count per 1,000 located addresses of the area. Without
    ``read_personal`` on the scope, members are suppressed (``bingeo.coverage.suppress_counts``)
    and ``members_per_1000`` is None where members are not exact.
    """
    scope = resolve_scope(engine, zone=zone, municipality=municipality)
    guard(engine, actor, Action.read_aggregates, scope.target, "coverage")
    found, default = scope_levels(engine, scope)
    level = default if level is None else AreaLevel(level)
    levels = tuple(found_level.value for found_level in found)
    suppress = not allowed(actor.principal, Action.read_personal, scope.target)
    store = _current_store(engine, level)
    with store.lock:
        return store.coverage(scope, level, include_inactive, suppress, levels)


def overlaps(
    engine: Engine,
    actor: Actor,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    include_inactive: bool = False,
    min_overlap_m2: float = MIN_SHARED_M2,
) -> OverlapResult:
    """Pairs of networks sharing at least ``min_overlap_m2`` or an address (``shares_area``), one
    of them a network of the scope.

    Also the networks of the scope that cross a municipality or police-zone border (lie in more
    than one such area, or partly outside all of them).
    """
    scope = resolve_scope(engine, zone=zone, municipality=municipality)
    guard(engine, actor, Action.read_aggregates, scope.target, "overlaps")
    store = _current_store(engine, None)
    with store.lock:
        networks = store.networks.frame
        found = store.overlaps()
        shared = store.shared_addresses()
        crossings = store.crossings(engine, min_overlap_m2)
    counted = _counted(networks, include_inactive).to_numpy()
    # A network of the scope lies (partly) in it: one crossing a border is on both sides.
    if scope.zone is not None:
        own = counted & _lies_in(networks["police_zone_codes"], scope.zone_codes)
    elif scope.nis_codes is not None:
        own = counted & _lies_in(networks["nis_codes"], scope.nis_codes)
    else:
        own = counted
    a, b = found["a"].to_numpy(), found["b"].to_numpy()
    shared_counts = [
        shared.get((int(x), int(y)), 0)
        for x, y in zip(networks["id"].to_numpy()[a], networks["id"].to_numpy()[b], strict=True)
    ]
    really = shares_area(
        found["overlap_m2"].to_numpy(),
        shared_counts,
        shared_perimeter_m=shapely.length(np.asarray(found["geometry"], dtype=object)),
        min_m2=min_overlap_m2,
    )
    kept = really & counted[a] & counted[b]
    kept &= own[a] | own[b]
    pair_frame = _pair_frame(networks, found[kept], shared)
    return OverlapResult(scope, pair_frame, crossings[own[crossings["position"]]], min_overlap_m2)


def gap_options(settings: Settings) -> dict[str, float | int]:
    """The settings that shape uncovered areas and candidate zones, as ``gaps`` arguments."""
    return {
        "max_covered_share": settings.gap_max_covered_share,
        "adjacency_m": settings.gap_adjacency_m,
        "min_addresses": settings.gap_min_addresses,
        "max_addresses": settings.gap_max_addresses,
    }


def gaps(
    engine: Engine,
    actor: Actor,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    level: AreaLevel | str | None = None,
    include_inactive: bool = False,
    max_covered_share: float = 0.1,
    adjacency_m: float = 1.0,
    min_addresses: int = 150,
    max_addresses: int = 1500,
) -> GapResult:
    """Areas with at most ``max_covered_share`` covered, ranked by uncovered addresses
    (``areas``), and candidate zones for new networks (``zones``).

    Every uncovered address of the scope lies in one candidate. A candidate is made of the
    uncovered parts of areas of ``level`` (default: the finest in the scope): their area
    without the counted networks, so it follows area and network boundaries and overlaps no
    network. It never crosses a municipality border and holds at most ``max_addresses`` (an
    area holding more is cut by straight lines between its addresses); parts below
    ``min_addresses`` are merged with a neighbour where they fit (``small`` marks those that
    could not). Each has a stable ``id`` (for ``validate_gap``), a name (its wijk and main
    streets) and the distance to the nearest counted network; candidates are ranked by
    uncovered addresses, then farthest from a network first.
    """
    result = coverage(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=include_inactive,
    )
    if result.level not in GAP_LEVELS:
        raise InvalidInput(
            f"candidate zones follow {', '.join(v.value for v in GAP_LEVELS)} boundaries, "
            f"not {result.level.value}"
        )
    ranked = core.rank_gaps(result.areas, max_covered_share=max_covered_share)
    ranked = gpd.GeoDataFrame(ranked.reset_index(drop=True), geometry="geometry", crs=SRID)
    if AreaLevel.wijk.value in result.levels:
        _current_store(engine, AreaLevel.wijk)  # names come from the wijken
    store = _current_store(engine, result.level)
    with store.lock:
        positions = _scope_positions(store.levels[result.level].areas, result.level, result.scope)
        options = (adjacency_m, min_addresses, max_addresses)
        wijken = store.levels.get(AreaLevel.wijk)
        key = (*store._counted_from(result.level), wijken.generation if wijken else None)
        chosen = positions[result.areas["uncovered"].to_numpy() > 0]
        zones = store._cached(
            ("candidates", result.scope, result.level, include_inactive, options),
            key,
            lambda: _candidate_frame(
                engine, store, result.level, chosen, include_inactive, *options
            ),
        )
    return GapResult(result.scope, result.level, ranked, zones)


def validate_gap(
    engine: Engine,
    actor: Actor,
    candidate_id: str,
    *,
    include_inactive: bool = False,
    max_covered_share: float = 0.1,
    adjacency_m: float = 1.0,
    min_addresses: int = 150,
    max_addresses: int = 1500,
) -> planning_service.ValidationReport:
    """The planning report of a candidate zone (by its ``id`` from ``gaps``), as if a planner
    proposed its area: the same report as ``bingeo.services.planning.validate``."""
    match = _CANDIDATE_ID.match(candidate_id or "")
    if match is None:
        raise InvalidInput(
            f"{candidate_id[:80]!r} is not a candidate zone id (e.g. 44021-sector-0123456789)"
        )
    found = gaps(
        engine,
        actor,
        municipality=match.group(1),
        level=match.group(2),
        include_inactive=include_inactive,
        max_covered_share=max_covered_share,
        adjacency_m=adjacency_m,
        min_addresses=min_addresses,
        max_addresses=max_addresses,
    )
    chosen = found.zones[found.zones["id"] == candidate_id]
    if not len(chosen):
        raise NotFound(f"no candidate zone {candidate_id} (the data changed: list the gaps again)")
    proposal = planning_service.Proposal(
        geometry=chosen.geometry.iloc[0], source=f"candidate zone {candidate_id}"
    )
    return planning_service.validate(engine, actor, proposal)


def coverage_map(
    engine: Engine,
    actor: Actor,
    settings: Settings,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    level: AreaLevel | str | None = None,
    include_inactive: bool = False,
    assets_url: str | None = None,
    language: str = "nl",
) -> folium.Map:
    """The coverage map of a scope: networks, overlaps, coverage per area of ``level`` (default:
    the finest in the scope), candidate zones (of ``level``, or the default where ``level``
    has none: police zones), in ``language`` (nl or fr)."""
    words = maps.texts(language)
    result = coverage(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=True,
    )
    level = result.level
    counted = result.networks
    if not include_inactive:
        counted = counted[counted["status"] == "active"]
    found = overlaps(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        include_inactive=include_inactive,
        min_overlap_m2=settings.min_overlap_m2,
    )
    holes = gaps(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        level=level if level in GAP_LEVELS else None,
        include_inactive=include_inactive,
        **gap_options(settings),
    )
    if not include_inactive:
        # The map shows every network (by status); the figures count only the active ones.
        figures = coverage(engine, actor, zone=zone, municipality=municipality, level=level).areas
    else:
        figures = result.areas
    in_view = _in_scope_networks(result, counted)
    return maps.coverage_map(
        figures,
        in_view,
        overlaps=found.pairs,
        gaps=holes.zones,
        tiles=settings.tiles or None,
        assets_url=settings.assets_url if assets_url is None else assets_url,
        title=maps.coverage_title(words, zone=zone, municipality=municipality, level=level),
        language=language,
    )


@dataclass
class NetworkFigures:
    """One network (``network``: a one-row frame, public facts), its counts and the reference
    areas holding its addresses (``areas``: code, name, addresses)."""

    network: gpd.GeoDataFrame
    figures: dict
    areas: gpd.GeoDataFrame
    level: AreaLevel


def network_figures(
    engine: Engine, actor: Actor, network: int | str, *, level: AreaLevel | str | None = None
) -> NetworkFigures:
    """Counts of one network (id or code): the addresses it covers, its members and members per
    1,000 of those addresses, and its addresses per reference area of ``level`` (default: the
    finest level of its municipality). Without ``read_personal`` on the network, a member count
    from 1 to 4 is "< 5" (no per 1,000)."""
    if level is None:
        store = _current_store(engine, None)
        with store.lock:
            nis_code = _network_row(store.networks.frame, network).iloc[0]["nis_code"]
        place = (nis_code,) if nis_code else None
        level = scope_levels(engine, Scope(None, nis_code, place, None, WHOLE))[1]
    level = AreaLevel(level)
    store = _current_store(engine, level)
    with store.lock:
        row = _network_row(store.networks.frame, network)
        record = row.iloc[0]
        network_id = int(record["id"])
        target = network_target(network_id, record["nis_codes"], record["police_zone_codes"])
        guard(engine, actor, Action.read_aggregates, target, "network map", network_id)
        exact = allowed(actor.principal, Action.read_personal, target)
        model = store.levels[level]
        covered = store.pair_addresses[store.pair_networks == network_id]
        members = int((store.member_networks == network_id).sum())
    area_of = model.area_of[np.minimum(covered, len(model.area_of) - 1)]
    counts = np.bincount(area_of[area_of >= 0], minlength=len(model.areas))
    reached = np.flatnonzero(counts)
    chosen = model.areas.iloc[reached]
    areas = gpd.GeoDataFrame(
        {
            "code": chosen["code"].to_numpy(),
            "name": chosen["name_nl"].to_numpy(),
            "addresses": counts[reached],
        },
        geometry=chosen.geometry.values,
        crs=SRID,
    )
    shown = people_count(members, exact=exact)
    figures = {
        "network": network_id,
        "addresses": len(covered),
        "members": shown,
        "members_per_1000": (
            1000 * members / len(covered) if len(covered) and isinstance(shown, int) else None
        ),
        "area_m2": float(record.geometry.area),
    }
    return NetworkFigures(row.reset_index(drop=True), figures, areas, level)


def network_map(
    engine: Engine,
    actor: Actor,
    settings: Settings,
    network: int | str,
    *,
    level: AreaLevel | str | None = None,
    assets_url: str | None = None,
    language: str = "nl",
) -> folium.Map:
    """The map of one network with its addresses and members counted (no personal data)."""
    maps.texts(language)
    found = network_figures(engine, actor, network, level=level)
    return maps.single_network_map(
        found.network,
        found.figures,
        found.areas,
        tiles=settings.tiles or None,
        assets_url=settings.assets_url if assets_url is None else assets_url,
        level=found.level.value,
        language=language,
    )


# read model -------------------------------------------------------------------------------------


@dataclass
class _Networks:
    """Every stored network (any status) with its area, ordered by id."""

    versions: dict[int, tuple] = field(default_factory=dict)
    frame: gpd.GeoDataFrame = field(default_factory=lambda: _network_frame([]))
    generation: int = 0


@dataclass
class _Level:
    """The areas of one level (ordered by id) and the area position of every address."""

    areas_fingerprint: str | None = None
    areas: gpd.GeoDataFrame | None = None
    state: tuple | None = None
    area_of: np.ndarray = field(default_factory=lambda: np.full(1, -1, np.int32))
    generation: int = 0


@dataclass
class _Store:
    """What coverage and overlaps are counted from, as arrays kept per process.

    Each part is reloaded only when what it was read from changes: the matches of a network
    when that network changes, all matches when addresses are imported, the members when one
    is added, moved or removed, the address areas of a level when they are refreshed. Figures
    per area are computed once per change and a scope is then a selection of rows.
    """

    lock: threading.RLock = field(default_factory=threading.RLock)
    networks: _Networks = field(default_factory=_Networks)
    addresses_marker: str | None = None
    pair_networks: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    pair_addresses: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    approximate_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    pairs_generation: int = 0
    members_fingerprint: str | None = None
    member_networks: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    member_addresses: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    members_generation: int = 0
    levels: dict[AreaLevel, _Level] = field(default_factory=dict)
    cache: dict[tuple, tuple[tuple, object]] = field(default_factory=dict)
    stamps: dict[AreaLevel | None, tuple] = field(default_factory=dict)  # see _current_store

    def update(self, engine: Engine, level: AreaLevel | None) -> None:
        """Reload what changed since the last call (and the address areas of ``level``)."""
        with engine.connect() as connection:
            marker = coverage_repo.addresses_marker(connection)
            changed = self._update_networks(connection)
            if marker != self.addresses_marker:
                pairs = match_repo.stored_pairs(connection)
                self.pair_networks = pairs.network_ids.astype(np.int64)
                self.pair_addresses = pairs.address_ids
                self.approximate_ids = address_repo.approximate_ids(connection)
                self.addresses_marker = marker
                self.pairs_generation += 1
            elif changed:
                pairs = match_repo.stored_pairs(connection, changed)
                kept = ~np.isin(self.pair_networks, changed)
                self.pair_networks = np.concatenate(
                    [self.pair_networks[kept], pairs.network_ids.astype(np.int64)]
                )
                self.pair_addresses = np.concatenate([self.pair_addresses[kept], pairs.address_ids])
                self.pairs_generation += 1
            members = coverage_repo.members_fingerprint(connection)
            if members != self.members_fingerprint:
                self.member_networks, self.member_addresses = coverage_repo.member_addresses(
                    connection
                )
                self.members_fingerprint = members
                self.members_generation += 1
            if level is not None:
                self._update_level(connection, level)

    def _update_networks(self, connection: Connection) -> list[int]:
        """Reload the networks written or deleted since; their ids."""
        known = self.networks
        versions = coverage_repo.network_versions(connection)
        if versions == known.versions:
            return []
        changed = sorted(i for i, v in versions.items() if known.versions.get(i) != v)
        gone = sorted(set(known.versions) - set(versions))
        loaded = _network_frame(coverage_repo.networks(connection, changed))
        kept = known.frame[~known.frame["id"].isin(changed + gone)]
        frame = pd.concat([kept, loaded], ignore_index=True) if len(kept) else loaded
        frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
        self.networks = _Networks(versions, frame, known.generation + 1)
        return changed + gone

    def _update_level(self, connection: Connection, level: AreaLevel) -> None:
        model = self.levels.setdefault(level, _Level())
        areas_print = coverage_repo.fingerprint(connection, level)
        state = coverage_repo.stored_state(connection, level)
        if areas_print == model.areas_fingerprint and state == model.state:
            return
        if areas_print != model.areas_fingerprint:
            model.areas = _area_frame(coverage_repo.scope_areas(connection, level))
            model.areas_fingerprint = areas_print
        address_ids, area_ids = coverage_repo.address_areas(connection, level)
        # Address ids are dense (a sequence): an array indexed by id is the fastest lookup.
        area_of = np.full(int(address_ids.max(initial=0)) + 2, -1, dtype=np.int32)
        area_of[address_ids] = _positions(model.areas["id"].to_numpy(), area_ids)
        model.area_of, model.state = area_of, state
        model.generation += 1

    def coverage(
        self,
        scope: Scope,
        level: AreaLevel,
        include_inactive: bool,
        suppress: bool = False,
        levels: tuple[str, ...] = (),
    ) -> CoverageResult:
        """The coverage of ``scope``, computed once per change of what it counts: while nothing
        changes every request of the scope gets the same result (which nobody may modify);
        ``suppress`` gives the member counts as shown to roles without member rights."""
        if suppress:
            return self._cached(
                ("coverage", scope, level, include_inactive, True, levels),
                self._counted_from(level),
                lambda: _suppressed(self.coverage(scope, level, include_inactive, False, levels)),
            )
        return self._cached(
            ("coverage", scope, level, include_inactive, False, levels),
            self._counted_from(level),
            lambda: self._coverage(scope, level, include_inactive, levels),
        )

    def _coverage(
        self, scope: Scope, level: AreaLevel, include_inactive: bool, levels: tuple[str, ...]
    ) -> CoverageResult:
        areas = self.levels[level].areas
        positions = _scope_positions(areas, level, scope)
        figures = self.figures(level, include_inactive)
        networks = self.networks.frame
        table, totals = figures.select(positions)
        chosen = areas.iloc[positions].reset_index(drop=True)
        frame = gpd.GeoDataFrame(
            pd.concat(
                [
                    pd.DataFrame(
                        {
                            "level": level.value,
                            "code": chosen["code"].to_numpy(),
                            "name": chosen["name_nl"].to_numpy(),
                            "nis_code": chosen["nis_code"].to_numpy(),
                        }
                    ),
                    table,
                ],
                axis=1,
            ),
            geometry=chosen.geometry.values,
            crs=SRID,
        )
        networks = networks[_counted(networks, include_inactive)]
        if scope.nis_codes is not None:
            networks = networks[_meets_box(networks, chosen.geometry.values)]
        networks = networks.reset_index(drop=True)
        return CoverageResult(scope, level, include_inactive, frame, totals, networks, levels)

    def figures(self, level: AreaLevel, include_inactive: bool) -> core.AreaFigures:
        """Figures of every area of ``level``, computed once per change of what they count."""
        model = self.levels[level]
        networks = self.networks.frame
        return self._cached(
            ("figures", level, include_inactive),
            self._counted_from(level),
            lambda: self._figures(model, networks, include_inactive),
        )

    def _counted_from(self, level: AreaLevel) -> tuple:
        """The generations of what the figures of ``level`` are counted from."""
        return (
            self.levels[level].generation,
            self.networks.generation,
            self.pairs_generation,
            self.members_generation,
        )

    def _figures(
        self, model: _Level, networks: gpd.GeoDataFrame, include_inactive: bool
    ) -> core.AreaFigures:
        counted = _counted(networks, include_inactive).to_numpy()
        ids = networks["id"].to_numpy()
        # Network ids are a sequence too: a dense lookup from id to counted position.
        size = int(max(ids.max(initial=0), self.pair_networks.max(initial=0))) + 1
        size = max(size, int(self.member_networks.max(initial=0)) + 1)
        lookup = np.full(size, -1, dtype=np.int64)
        lookup[ids[counted]] = np.arange(int(counted.sum()))
        network_position = lookup[self.pair_networks]
        kept = network_position >= 0
        # Addresses without an area at this level (or newer than the level's refresh) map to
        # the last entry, which is -1.
        outside = len(model.area_of) - 1
        addresses = np.minimum(self.pair_addresses[kept], outside)
        matches = core.Matches(network_position[kept], addresses)
        counted_members = lookup[self.member_networks] >= 0
        member_areas = model.area_of[np.minimum(self.member_addresses[counted_members], outside)]
        kinds = networks["kind"].to_numpy()[counted]
        approximate = np.zeros(len(model.area_of), dtype=bool)
        approximate[self.approximate_ids[self.approximate_ids < outside]] = True
        return core.coverage_table(
            model.area_of, len(model.areas), matches, kinds, member_areas, approximate
        )

    def overlaps(self) -> pd.DataFrame:
        """Every pair of networks (any status) whose areas overlap by more than 0 m²."""
        geometries = self.networks.frame.geometry.values
        return self._cached(
            ("overlaps",),
            (self.networks.generation,),
            lambda: core.overlapping_pairs(geometries, min_area_m2=0.0),
        )

    def shared_addresses(self) -> dict[tuple[int, int], int]:
        """Addresses covered by both networks of every pair of network ids (a < b)."""
        return self._cached(
            ("shared",),
            (self.pairs_generation,),
            lambda: core.shared_address_counts(
                core.Matches(self.pair_networks, self.pair_addresses)
            ),
        )

    def crossings(self, engine: Engine, min_area_m2: float) -> gpd.GeoDataFrame:
        """Every network crossing a municipality or police-zone border (column ``position``:
        its row in the networks frame)."""
        with engine.connect() as connection:
            prints = tuple(
                coverage_repo.fingerprint(connection, level)
                for level in (AreaLevel.municipality, AreaLevel.police_zone)
            )

            def compute() -> gpd.GeoDataFrame:
                municipalities = coverage_repo.scope_areas(connection, AreaLevel.municipality)
                zones = coverage_repo.scope_areas(connection, AreaLevel.police_zone)
                return _crossings(self.networks.frame, municipalities, zones, min_area_m2)

            key = (self.networks.generation, prints)
            return self._cached(("crossings", min_area_m2), key, compute)

    def _cached(self, name: tuple, key: tuple, compute: Callable[[], object]):
        found = self.cache.get(name)
        if found is None or found[0] != key:
            found = (key, compute())
            self.cache[name] = found
        return found[1]


_STORES: dict[str, _Store] = {}
_STORES_LOCK = threading.Lock()


def _current_store(engine: Engine, level: AreaLevel | None) -> _Store:
    """The store, up to date for ``level`` (and its address areas refreshed when stale).

    When the data stamp is the one seen after the last update of ``level``, nothing changed and
    one query sufficed. The stamp is read before updating, so a write in between shows next time.
    """
    store = _store(engine)
    with engine.connect() as connection:
        stamp = coverage_repo.data_stamp(connection)
    if store.stamps.get(level) == stamp:
        return store
    if level is not None:
        refresh_address_areas(engine, level)
    with store.lock:
        store.update(engine, level)
        store.stamps[level] = stamp
    return store


def _store(engine: Engine) -> _Store:
    key = engine.url.render_as_string(hide_password=True)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:  # not setdefault: an empty store builds an empty frame (ms)
            store = _STORES[key] = _Store()
        return store


def _refresh_level(connection: Connection, level: AreaLevel, points: AddressPoints) -> None:
    """Store the area of every address of ``level`` (only the rows that change)."""
    current = coverage_repo.fingerprint(connection, level)
    rows = coverage_repo.scope_areas(connection, level)
    geometries = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else np.empty(0)
    area_of = core.assign_areas(points, geometries)
    inside = area_of >= 0
    area_ids = np.array([r.id for r in rows], dtype=np.int32)
    new = Pairs(area_ids[area_of[inside]], points.ids[inside])
    stored_addresses, stored_areas = coverage_repo.address_areas(connection, level)
    old = Pairs(stored_areas.astype(np.int32), stored_addresses)
    coverage_repo.store_address_areas(connection, level, new, old, current)


# private helpers --------------------------------------------------------------------------------


def _lies_in(codes: pd.Series, scope: Sequence[str]) -> np.ndarray:
    wanted = set(scope)
    return np.array([bool(wanted.intersection(c)) for c in codes], dtype=bool)


def _suppressed(result: CoverageResult) -> CoverageResult:
    """The result as shown to a role without member rights (the exact one is left as it is)."""
    cells, total = core.suppress_counts(result.areas["members"].to_numpy())
    exact = np.array([isinstance(cell, int) for cell in cells], dtype=bool)
    areas = result.areas.copy()
    areas["members"] = pd.Series(cells, index=areas.index, dtype=object)
    areas["members_per_1000"] = areas["members_per_1000"].where(exact)
    totals = dict(result.totals, members=total)
    if not isinstance(total, int):
        totals["members_per_1000"] = None
    return replace(result, areas=areas, totals=totals, suppressed=True)


def _candidate_frame(
    engine: Engine,
    store: _Store,
    level: AreaLevel,
    chosen: np.ndarray,
    include_inactive: bool,
    adjacency_m: float,
    min_addresses: int,
    max_addresses: int,
) -> gpd.GeoDataFrame:
    """Candidate zones made of the uncovered parts of the areas of ``level`` at ``chosen``
    positions and their uncovered addresses (see ``gaps``)."""
    model = store.levels[level]
    areas = model.areas
    networks = store.networks.frame
    networks = networks[_counted(networks, include_inactive)]
    reached = store.pair_addresses[np.isin(store.pair_networks, networks["id"].to_numpy())]
    with engine.connect() as connection:
        ids, x, y, streets = coverage_repo.address_facts(
            connection, level, areas["id"].to_numpy()[chosen]
        )
    # The read model's areas decide (the table may have changed since): uncovered ones only.
    placed = model.area_of[np.minimum(ids, len(model.area_of) - 1)]
    kept = np.isin(placed, chosen) & ~np.isin(ids, reached)
    ids, x, y = ids[kept], x[kept], y[kept]
    streets = [street for street, keep in zip(streets, kept, strict=True) if keep]
    unit_of_area = np.full(len(areas), -1, dtype=np.int64)
    unit_of_area[chosen] = np.arange(len(chosen))
    address_unit = unit_of_area[model.area_of[ids]] if len(ids) else np.empty(0, np.int64)
    codes = areas["code"].to_numpy()[chosen]
    group_of = areas["nis_code"].fillna(areas["code"]).to_numpy()[chosen]
    found = core.candidate_zones(
        _uncovered_parts(areas.geometry.values[chosen], networks.geometry.values),
        group_of,
        address_unit,
        x,
        y,
        min_addresses=min_addresses,
        max_addresses=max_addresses,
        adjacency_m=adjacency_m,
    )
    wijken = store.levels.get(AreaLevel.wijk)
    if wijken is not None and wijken.areas is not None and len(wijken.areas):
        wijk_of = wijken.area_of[np.minimum(ids, len(wijken.area_of) - 1)]
        wijk_names = wijken.areas["name_nl"].fillna(wijken.areas["code"]).to_numpy()
    else:  # no wijken: the name of the area itself
        wijk_of = unit_of_area[model.area_of[ids]] if len(ids) else np.empty(0, np.int64)
        wijk_names = areas["name_nl"].fillna(areas["code"]).to_numpy()[chosen]
    tree = shapely.STRtree(networks.geometry.values) if len(networks) else None
    rows = []
    for candidate in found:
        parts = [codes[unit] + (f"/{piece}" if piece else "") for unit, piece in candidate.parts]
        places = Counter(int(w) for w in wijk_of[candidate.rows] if w >= 0).most_common()
        wijk = str(wijk_names[min(places, key=lambda p: (-p[1], p[0]))[0]]) if places else ""
        counts = Counter(streets[r] for r in candidate.rows)
        main = [name for name, _ in sorted(counts.items(), key=lambda c: (-c[1], c[0]))]
        main = main[:MAIN_STREETS]
        distance = None
        if tree is not None:
            distance = float(tree.query_nearest(candidate.geometry, return_distance=True)[1].min())
        digest = hashlib.sha1(f"{level.value}|{';'.join(parts)}".encode()).hexdigest()[:10]
        rows.append(
            {
                "id": f"{candidate.group}-{level.value}-{digest}",
                "name": f"{wijk}: {', '.join(main)}" if wijk else ", ".join(main),
                "wijk": wijk,
                "streets": ", ".join(main),
                "municipality": candidate.group,
                "areas": len({unit for unit, _ in candidate.parts}),
                "codes": ",".join(parts),
                "addresses": len(candidate.rows),
                "uncovered": len(candidate.rows),
                "distance_m": None if distance is None else round(distance, 1),
                "area_m2": float(candidate.geometry.area),
                "small": len(candidate.rows) < min_addresses,
                "geometry": candidate.geometry,
            }
        )
    rows.sort(
        key=lambda r: (
            -r["uncovered"],
            -(np.inf if r["distance_m"] is None else r["distance_m"]),
            r["id"],
        )
    )
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return gpd.GeoDataFrame(
        rows, columns=[*CANDIDATE_COLUMNS, "geometry"], geometry="geometry", crs=SRID
    )


def _network_row(frame: gpd.GeoDataFrame, network: int | str) -> gpd.GeoDataFrame:
    """The row of a network given by id or code (NotFound when there is none)."""
    # Only ASCII digits make an id ("²".isdigit() is true, int("²") fails).
    number = decimal_id(network) if isinstance(network, str) else network
    row = frame[frame["code"] == network] if number is None else frame[frame["id"] == number]
    if not len(row):
        raise NotFound(f"no network {network}")
    return row


def _uncovered_parts(areas: np.ndarray, networks: np.ndarray) -> np.ndarray:
    """Each area without the networks' areas: what a new network there could cover."""
    parts = np.array(areas, dtype=object)
    if not len(networks) or not len(parts):
        return parts
    area_at, network_at = shapely.STRtree(networks).query(parts, predicate="intersects")
    for position in np.unique(area_at):
        taken = shapely.union_all(networks[network_at[area_at == position]])
        parts[position] = shapely.difference(shapely.make_valid(parts[position]), taken)
    return parts


def _area_exists(connection: Connection, level: AreaLevel, code: str) -> bool:
    return bool(coverage_repo.scope_areas(connection, level, nis_codes=[code], zone_codes=[code]))


def _network_frame(rows: list) -> gpd.GeoDataFrame:
    return _frame(
        rows,
        (
            "id",
            "code",
            "name",
            "kind",
            "status",
            "nis_code",
            "police_zone_code",
            "nis_codes",
            "police_zone_codes",
        ),
    )


def _area_frame(rows: list) -> gpd.GeoDataFrame:
    return _frame(rows, ("id", "code", "name_nl", "nis_code"))


def _frame(rows: list, names: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Rows with a ``wkb`` field as a GeoDataFrame of the fields ``names`` (EPSG:31370); enums
    as their values."""
    columns: dict[str, object] = {
        name: [getattr(getattr(r, name), "value", getattr(r, name)) for r in rows] for name in names
    }
    columns["id"] = np.array(columns["id"], dtype=np.int64)
    geometries = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(list(geometries), crs=SRID), crs=SRID)


def _positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each of ``ids`` in ``sorted_ids`` (-1 where absent)."""
    if not len(sorted_ids):
        return np.full(len(ids), -1, dtype=np.int64)
    found = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[found] == ids, found, -1)


def _scope_positions(areas: gpd.GeoDataFrame, level: AreaLevel, scope: Scope) -> np.ndarray:
    """Positions of the scope's areas (as ``coverage_repo.scope_areas`` selects them)."""
    if scope.nis_codes is None:
        return np.arange(len(areas))
    if level == AreaLevel.police_zone:
        chosen = areas["code"].isin(scope.zone_codes)
    elif level == AreaLevel.municipality:
        chosen = areas["code"].isin(scope.nis_codes)
    else:
        chosen = areas["nis_code"].isin(scope.nis_codes)
    return np.flatnonzero(chosen.to_numpy())


def _counted(networks: gpd.GeoDataFrame, include_inactive: bool) -> pd.Series:
    return (
        pd.Series(True, index=networks.index)
        if include_inactive
        else (networks["status"] == NetworkStatus.active.value)
    )


def _meets_box(networks: gpd.GeoDataFrame, geometries: np.ndarray) -> np.ndarray:
    """Networks whose bounding box meets that of ``geometries`` (as PostGIS ``&&``)."""
    if not len(geometries):
        return np.zeros(len(networks), dtype=bool)
    minx, miny, maxx, maxy = shapely.total_bounds(geometries)
    bounds = shapely.bounds(networks.geometry.values)
    return (
        (bounds[:, 0] <= maxx)
        & (bounds[:, 2] >= minx)
        & (bounds[:, 1] <= maxy)
        & (bounds[:, 3] >= miny)
    )


def _pair_frame(networks: gpd.GeoDataFrame, found: pd.DataFrame, shared: dict) -> gpd.GeoDataFrame:
    a, b = found["a"].to_numpy(), found["b"].to_numpy()
    ids = networks["id"].to_numpy()
    columns = {}
    for side, positions in (("a", a), ("b", b)):
        columns[f"network_{side}"] = ids[positions]
        for name in ("code", "name", "kind", "status"):
            columns[f"{name}_{side}"] = networks[name].to_numpy()[positions]
    frame = gpd.GeoDataFrame(
        {
            **columns,
            "overlap_m2": found["overlap_m2"].to_numpy(),
            "share_a": found["share_a"].to_numpy(),
            "share_b": found["share_b"].to_numpy(),
            "shared_addresses": [
                shared.get((int(x), int(y)), 0) for x, y in zip(ids[a], ids[b], strict=True)
            ],
        },
        geometry=gpd.GeoSeries(list(found["geometry"]), crs=SRID),
        crs=SRID,
    )
    return frame.sort_values("overlap_m2", ascending=False, kind="stable").reset_index(drop=True)


def _crossings(
    networks: gpd.GeoDataFrame, municipalities: list, zones: list, min_area_m2: float
) -> gpd.GeoDataFrame:
    """The networks crossing a border, with the areas they lie in and their area outside."""
    columns = {
        "position": np.arange(len(networks)),
        "network": networks["id"].to_numpy(),
        "code": networks["code"].to_numpy(),
        "name": networks["name"].to_numpy(),
    }
    crossing = np.zeros(len(networks), dtype=bool)
    for name, areas in (("municipalities", municipalities), ("police_zones", zones)):
        found = [([], 0.0)] * len(networks)
        if areas:
            geometries = shapely.from_wkb([bytes(r.wkb) for r in areas])
            found = core.border_crossings(
                networks.geometry.values, geometries, min_area_m2=min_area_m2
            )
        columns[name] = [",".join(areas[i].code for i in idx) for idx, _ in found]
        outside = np.array([m2 for _, m2 in found], dtype=float)
        columns[f"outside_{name}_m2"] = outside
        crossing |= (np.array([len(idx) for idx, _ in found]) > 1) | (outside > min_area_m2)
    frame = gpd.GeoDataFrame(columns, geometry=networks.geometry.values, crs=SRID)
    return frame[crossing].reset_index(drop=True)


def _in_scope_networks(result: CoverageResult, networks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if result.scope.nis_codes is None or not len(result.areas):
        return networks
    extent = shapely.union_all(result.areas.geometry.values)
    return networks[networks.intersects(extent)]


def export_frame(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Write figures to ``path`` by its extension: .csv (no geometry), .gpkg or .geojson."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.drop(columns=frame.geometry.name).to_csv(path, index=False)
    elif suffix == ".gpkg":
        # A GeoPackage column has one type: counts suppressed as "< 5" make the column text.
        mixed = [
            name
            for name in frame.columns
            if name != frame.geometry.name
            and frame[name].dtype == object
            and frame[name].map(type).nunique() > 1
        ]
        if mixed:
            frame = frame.assign(
                **{
                    name: frame[name].map(lambda v: None if pd.isna(v) else str(v))
                    for name in mixed
                }
            )
        frame.to_file(path, driver="GPKG", layer=path.stem)
    elif suffix in (".geojson", ".json"):
        path.write_text(frame.to_crs(GEOJSON_EPSG).to_json(drop_id=True, na="null"))
    else:
        raise InvalidInput(f"{path}: unknown output format (use .html, .csv, .gpkg or .geojson)")


def export_map(fmap_for: Callable[[str | None], folium.Map], path: Path) -> None:
    """Write a map to ``path`` with its scripts and styles beside it (``maps.save_map``)."""
    maps.save_map(fmap_for, path)
