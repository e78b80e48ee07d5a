"""Coverage, overlaps and uncovered neighbourhoods of a scope, under the access rules.

A scope is one police zone, one municipality or the whole country. Figures are aggregates
(counts, shares, members per 1,000 addresses): reading them needs ``read_aggregates`` on the
scope, never access to personal data.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, func, select

from bingeo import coverage as core
from bingeo import maps
from bingeo.access import WHOLE, Action, Actor, Target
from bingeo.db import coverage as coverage_repo
from bingeo.db import matching as match_repo
from bingeo.db.models import SRID, AreaLevel
from bingeo.errors import InvalidInput, NotFound
from bingeo.geometry import GEOJSON_EPSG
from bingeo.services.audit import guard
from bingeo.services.members import member_counts
from bingeo.settings import Settings

VENDOR_DIR = Path(__file__).resolve().parents[1] / "static" / "vendor"
_REFRESH_LOCK = 0x62696E67  # advisory lock key: one refresh of address_areas at a time


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


@dataclass
class CoverageResult:
    """Figures per reference area (``areas``, EPSG:31370) and for the whole scope."""

    scope: Scope
    level: AreaLevel
    include_inactive: bool
    areas: gpd.GeoDataFrame
    totals: dict
    networks: gpd.GeoDataFrame = field(repr=False)


@dataclass
class OverlapResult:
    """Overlapping network pairs and networks crossing municipality or police-zone borders."""

    scope: Scope
    pairs: gpd.GeoDataFrame
    crossings: gpd.GeoDataFrame
    min_overlap_m2: float


@dataclass
class GapResult:
    """Uncovered areas, ranked, and candidate zones of adjacent uncovered areas."""

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

    Returns whether it recomputed. Call it with ``force`` after an import that moved addresses.
    """
    level = AreaLevel(level)
    with engine.connect() as connection:
        current = coverage_repo.fingerprint(connection, level)
        if not force and coverage_repo.stored_fingerprint(connection, level) == current:
            return False
    with engine.begin() as connection:
        connection.execute(select(func.pg_advisory_xact_lock(_REFRESH_LOCK)))
        current = coverage_repo.fingerprint(connection, level)
        if not force and coverage_repo.stored_fingerprint(connection, level) == current:
            return False  # another process refreshed it while this one waited
        rows = coverage_repo.scope_areas(connection, level)
        geometries = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else np.empty(0)
        points = match_repo.load_points(connection)
        area_of = core.assign_areas(points, geometries)
        inside = area_of >= 0
        area_ids = np.array([r.id for r in rows], dtype=np.int64)
        coverage_repo.replace_address_areas(
            connection, level, points.ids[inside], area_ids[area_of[inside]], current
        )
    return True


def coverage(
    engine: Engine,
    actor: Actor,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    level: AreaLevel | str = AreaLevel.sector,
    include_inactive: bool = False,
) -> CoverageResult:
    """Coverage figures per reference area of ``level`` in the scope, and for the scope."""
    level = AreaLevel(level)
    scope = resolve_scope(engine, zone=zone, municipality=municipality)
    guard(engine, actor, Action.read_aggregates, scope.target, "coverage")
    refresh_address_areas(engine, level)
    model = _read_model(engine, level)
    with engine.connect() as connection:
        areas = coverage_repo.scope_areas(
            connection, level, nis_codes=scope.nis_codes, zone_codes=scope.zone_codes
        )
        geometries = shapely.from_wkb([bytes(r.wkb) for r in areas]) if areas else np.empty(0)
        whole = scope.nis_codes is None
        bbox = None if whole or not len(areas) else tuple(shapely.total_bounds(geometries))
        networks = _networks(connection, include_inactive=include_inactive, bbox=bbox)
    members = member_counts(engine, networks["id"].tolist()) if len(networks) else {}
    network_members = np.array([members.get(int(i), 0) for i in networks["id"]], dtype=float)

    area_ids = np.array([r.id for r in areas], dtype=np.int64)
    area_of, matches = model.select(area_ids, networks["id"].to_numpy())
    kinds = networks["kind"].to_numpy(dtype=object)
    table = core.coverage_table(area_of, len(areas), matches, kinds, network_members)
    in_scope_members = float(table["members"].sum())
    totals = core.totals(table, matches, area_of, in_scope_members)
    frame = gpd.GeoDataFrame(
        pd.concat(
            [
                pd.DataFrame(
                    {
                        "level": level.value,
                        "code": [r.code for r in areas],
                        "name": [r.name_nl for r in areas],
                        "nis_code": [r.nis_code for r in areas],
                    }
                ),
                table,
            ],
            axis=1,
        ),
        geometry=gpd.GeoSeries(list(geometries), crs=SRID),
        crs=SRID,
    )
    return CoverageResult(scope, level, include_inactive, frame, totals, networks)


def overlaps(
    engine: Engine,
    actor: Actor,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    include_inactive: bool = False,
    min_overlap_m2: float = 1.0,
) -> OverlapResult:
    """Pairs of networks overlapping by more than ``min_overlap_m2`` with a network of the scope.

    Also the networks of the scope that cross a municipality or police-zone border (lie in more
    than one such area, or partly outside all of them).
    """
    scope = resolve_scope(engine, zone=zone, municipality=municipality)
    guard(engine, actor, Action.read_aggregates, scope.target, "overlaps")
    with engine.connect() as connection:
        own = _networks(
            connection,
            include_inactive=include_inactive,
            nis_codes=scope.nis_codes if scope.zone is None else None,
            zone_codes=scope.zone_codes if scope.zone else None,
        )
        if scope.nis_codes is None:
            candidates = own
        elif len(own):
            bbox = tuple(shapely.total_bounds(own.geometry.values))
            candidates = _networks(connection, include_inactive=include_inactive, bbox=bbox)
        else:
            candidates = own
        found = core.overlapping_pairs(candidates.geometry.values, min_area_m2=min_overlap_m2)
        ids = candidates["id"].to_numpy()
        in_scope = np.isin(ids, own["id"].to_numpy())
        found = found[in_scope[found["a"]] | in_scope[found["b"]]].reset_index(drop=True)
        involved = sorted(set(ids[found["a"]].tolist()) | set(ids[found["b"]].tolist()))
        pair_networks, pair_addresses = _stored_matches(engine, connection)
        municipalities = coverage_repo.scope_areas(connection, AreaLevel.municipality)
        zones = coverage_repo.scope_areas(connection, AreaLevel.police_zone)
    kept = np.isin(pair_networks, involved)
    network_lookup = np.full(int(max(ids.max(initial=0), 0)) + 1, -1, dtype=np.int64)
    network_lookup[ids] = np.arange(len(ids))
    kept &= pair_networks < len(network_lookup)
    shared = core.shared_address_counts(
        core.Matches(network_lookup[pair_networks[kept]], pair_addresses[kept])
    )
    pair_frame = _pair_frame(candidates, found, shared)
    crossings = _crossings(own, municipalities, zones, min_overlap_m2)
    return OverlapResult(scope, pair_frame, crossings, min_overlap_m2)


def gaps(
    engine: Engine,
    actor: Actor,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    level: AreaLevel | str = AreaLevel.sector,
    include_inactive: bool = False,
    max_covered_share: float = 0.1,
    adjacency_m: float = 1.0,
) -> GapResult:
    """Areas with at most ``max_covered_share`` covered, ranked by uncovered addresses, and
    clusters of such areas within ``adjacency_m`` of each other merged into candidate zones."""
    result = coverage(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=include_inactive,
    )
    ranked = core.rank_gaps(result.areas, max_covered_share=max_covered_share)
    ranked = gpd.GeoDataFrame(ranked.reset_index(drop=True), geometry="geometry", crs=SRID)
    labels = core.adjacent_clusters(ranked.geometry.values, adjacency_m=adjacency_m)
    rows = []
    for label in np.unique(labels):
        members = ranked[labels == label]
        rows.append(
            {
                "areas": len(members),
                "codes": ",".join(sorted(members["code"])),
                "addresses": int(members["addresses"].sum()),
                "covered": int(members["covered"].sum()),
                "uncovered": int(members["uncovered"].sum()),
                "area_m2": float(members.geometry.area.sum()),
                "geometry": shapely.union_all(members.geometry.values),
            }
        )
    zones = gpd.GeoDataFrame(
        rows,
        columns=["areas", "codes", "addresses", "covered", "uncovered", "area_m2", "geometry"],
        geometry="geometry",
        crs=SRID,
    )
    zones = zones.sort_values(["uncovered", "codes"], ascending=[False, True], kind="stable")
    zones = zones.reset_index(drop=True)
    zones.insert(0, "rank", np.arange(1, len(zones) + 1))
    return GapResult(result.scope, result.level, ranked, zones)


def coverage_map(
    engine: Engine,
    actor: Actor,
    settings: Settings,
    *,
    zone: str | None = None,
    municipality: str | None = None,
    level: AreaLevel | str = AreaLevel.sector,
    include_inactive: bool = False,
    assets_url: str | None = None,
) -> folium.Map:
    """The coverage map of a scope: networks, overlaps, coverage per area, uncovered zones."""
    result = coverage(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=True,
    )
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
        level=level,
        include_inactive=include_inactive,
        max_covered_share=settings.gap_max_covered_share,
        adjacency_m=settings.gap_adjacency_m,
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
        title=f"Coverage of {result.scope.describe()} per {result.level.value}",
    )


# read model -------------------------------------------------------------------------------------


@dataclass
class _ReadModel:
    """The stored area of every address and the stored matches, as arrays (kept per process).

    Loading millions of rows takes seconds; counting them takes milliseconds. The arrays are
    reloaded when the fingerprints of what they were read from change.
    """

    areas_fingerprint: str
    matches_fingerprint: str
    address_ids: np.ndarray  # sorted
    area_ids: np.ndarray  # area id of each address
    pair_networks: np.ndarray  # network id of each stored match
    pair_addresses: np.ndarray  # position of its address in ``area_ids``

    def select(
        self, scope_area_ids: np.ndarray, network_ids: np.ndarray
    ) -> tuple[np.ndarray, core.Matches]:
        """Area positions of the addresses of the scope's areas, and the matches of
        ``network_ids`` (sorted) among them, as positions."""
        size = int(max(self.area_ids.max(initial=0), scope_area_ids.max(initial=0))) + 1
        lookup = np.full(size, -1, dtype=np.int64)
        lookup[scope_area_ids] = np.arange(len(scope_area_ids))
        area_of_all = lookup[self.area_ids]
        chosen = area_of_all >= 0
        renumber = np.cumsum(chosen) - 1
        size = int(max(self.pair_networks.max(initial=0), network_ids.max(initial=0))) + 1
        network_lookup = np.full(size, -1, dtype=np.int64)
        network_lookup[network_ids] = np.arange(len(network_ids))
        network = network_lookup[self.pair_networks]
        kept = (network >= 0) & chosen[self.pair_addresses]
        matches = core.Matches(network[kept], renumber[self.pair_addresses[kept]])
        return area_of_all[chosen], matches


_READ_MODELS: dict[tuple[str, AreaLevel], _ReadModel] = {}


def _read_model(engine: Engine, level: AreaLevel) -> _ReadModel:
    key = (engine.url.render_as_string(hide_password=True), level)
    with engine.connect() as connection:
        areas_print = coverage_repo.fingerprint(connection, level)
        matches_print = coverage_repo.matches_fingerprint(connection)
        model = _READ_MODELS.get(key)
        if model is None or model.areas_fingerprint != areas_print:
            address_ids, area_ids = coverage_repo.address_areas(connection, level)
            order = np.argsort(address_ids, kind="stable")
            address_ids, area_ids = address_ids[order], area_ids[order]
            empty = np.empty(0, np.int64)
            model = _ReadModel(areas_print, "", address_ids, area_ids, empty, empty)
        if model.matches_fingerprint != matches_print:
            pair_networks, pair_addresses = _stored_matches(engine, connection, matches_print)
            address_ids = model.address_ids
            position = np.searchsorted(address_ids, pair_addresses)
            clipped = np.minimum(position, max(len(address_ids) - 1, 0))
            found = (position < len(address_ids)) & (
                address_ids[clipped] == pair_addresses if len(address_ids) else False
            )
            model.pair_networks = pair_networks[found]
            model.pair_addresses = position[found].astype(np.int64)
            model.matches_fingerprint = matches_print
    _READ_MODELS[key] = model
    return model


_MATCHES: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}


def _stored_matches(
    engine: Engine, connection: Connection, fingerprint: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(network ids, address ids) of every stored match, kept per process while current."""
    key = engine.url.render_as_string(hide_password=True)
    if fingerprint is None:
        fingerprint = coverage_repo.matches_fingerprint(connection)
    cached = _MATCHES.get(key)
    if cached is None or cached[0] != fingerprint:
        pairs = match_repo.stored_pairs(connection)
        cached = (fingerprint, pairs.network_ids.astype(np.int64), pairs.address_ids)
        _MATCHES[key] = cached
    return cached[1], cached[2]


# private helpers --------------------------------------------------------------------------------


def _area_exists(connection: Connection, level: AreaLevel, code: str) -> bool:
    return bool(coverage_repo.scope_areas(connection, level, nis_codes=[code], zone_codes=[code]))


def _networks(
    connection: Connection, *, include_inactive: bool, bbox=None, **scope
) -> gpd.GeoDataFrame:
    rows = coverage_repo.counted_networks(
        connection, include_inactive=include_inactive, bbox=bbox, **scope
    )
    geometries = shapely.from_wkb([bytes(r.wkb) for r in rows]) if rows else []
    return gpd.GeoDataFrame(
        {
            "id": np.array([r.id for r in rows], dtype=np.int64),
            "code": [r.code for r in rows],
            "name": [r.name for r in rows],
            "kind": [r.kind.value for r in rows],
            "status": [r.status.value for r in rows],
            "nis_code": [r.nis_code for r in rows],
            "police_zone_code": [r.police_zone_code for r in rows],
        },
        geometry=gpd.GeoSeries(list(geometries), crs=SRID),
        crs=SRID,
    )


def _bounds(wkb) -> tuple[float, float, float, float]:
    return tuple(shapely.bounds(shapely.from_wkb(bytes(wkb))))


def _pair_frame(
    candidates: gpd.GeoDataFrame, found: pd.DataFrame, shared: dict
) -> gpd.GeoDataFrame:
    a, b = found["a"].to_numpy(), found["b"].to_numpy()
    columns = {}
    for side, positions in (("a", a), ("b", b)):
        columns[f"network_{side}"] = candidates["id"].to_numpy()[positions]
        for name in ("code", "name", "kind", "status"):
            columns[f"{name}_{side}"] = candidates[name].to_numpy()[positions]
    frame = gpd.GeoDataFrame(
        {
            **columns,
            "overlap_m2": found["overlap_m2"].to_numpy(),
            "share_a": found["share_a"].to_numpy(),
            "share_b": found["share_b"].to_numpy(),
            "shared_addresses": [
                shared.get((int(x), int(y)), 0) for x, y in zip(a, b, strict=True)
            ],
        },
        geometry=gpd.GeoSeries(list(found["geometry"]), crs=SRID),
        crs=SRID,
    )
    return frame.sort_values("overlap_m2", ascending=False, kind="stable").reset_index(drop=True)


def _crossings(
    own: gpd.GeoDataFrame, municipalities: list, zones: list, min_area_m2: float
) -> gpd.GeoDataFrame:
    rows = []
    per_level = {}
    for name, areas in (("municipalities", municipalities), ("police_zones", zones)):
        if not areas:
            continue
        geometries = shapely.from_wkb([bytes(r.wkb) for r in areas])
        found = core.border_crossings(own.geometry.values, geometries, min_area_m2=min_area_m2)
        per_level[name] = [([areas[i].code for i in idx], outside) for idx, outside in found]
    for i in range(len(own)):
        record = {"network": int(own["id"].iloc[i]), "code": own["code"].iloc[i]}
        record["name"] = own["name"].iloc[i]
        crossing = False
        for name in ("municipalities", "police_zones"):
            codes, outside = per_level.get(name, [([], 0.0)] * len(own))[i]
            record[name] = ",".join(codes)
            record[f"outside_{name}_m2"] = outside
            crossing |= len(codes) > 1 or outside > min_area_m2
        if crossing:
            record["geometry"] = own.geometry.iloc[i]
            rows.append(record)
    columns = [
        "network",
        "code",
        "name",
        "municipalities",
        "outside_municipalities_m2",
        "police_zones",
        "outside_police_zones_m2",
        "geometry",
    ]
    return gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=SRID)


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
        frame.to_file(path, driver="GPKG", layer=path.stem)
    elif suffix in (".geojson", ".json"):
        path.write_text(frame.to_crs(GEOJSON_EPSG).to_json(drop_id=True, na="null"))
    else:
        raise InvalidInput(f"{path}: unknown output format (use .html, .csv, .gpkg or .geojson)")


def export_map(fmap_for: Callable[[str | None], folium.Map], path: Path) -> None:
    """Write a map to ``path`` with its scripts and styles copied into ``vendor/`` beside it.

    ``fmap_for`` builds the map for an assets base URL; without vendored assets (run
    scripts/fetch-web-assets.sh) the map falls back to folium's CDN links.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if VENDOR_DIR.is_dir():
        shutil.copytree(VENDOR_DIR, path.parent / "vendor", dirs_exist_ok=True)
        fmap = fmap_for("vendor")
    else:
        fmap = fmap_for(None)
    fmap.save(str(path))
