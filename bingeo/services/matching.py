"""Address-to-network matching: full and incremental rematch, and "which networks cover this?".

The stored ``address_networks`` table is the answer; it is always computed by
``bingeo.matching`` (shapely ``intersects_xy`` on the read model: boundary counts as inside, as
``ST_Covers``), whether for all networks or for the one a write just changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, Engine

from bingeo.access import Actor
from bingeo.db import matching as match_repo
from bingeo.db.models import AreaLevel, NetworkKind, NetworkStatus
from bingeo.errors import InvalidInput, NotFound
from bingeo.matching import (
    Pairs,
    changed_boxes,
    covers_xy,
    difference,
    lonlat_to_storage,
    match,
)
from bingeo.networks import JOIN_LANGUAGES, join_text

Progress = Callable[[str], None]
# Networks residents are not pointed to: they no longer take members.
CLOSED = (NetworkStatus.dissolved, NetworkStatus.merged)
# Beyond this many networks, reading every point is cheaper than one box per network.
MAX_BOXES = 50


@dataclass
class MatchStats:
    """What a rematch did and how long each step took."""

    networks: int = 0
    addresses: int = 0
    pairs: int = 0
    covered_addresses: int = 0
    added: int = 0
    removed: int = 0
    load_s: float = 0.0
    match_s: float = 0.0
    store_s: float = 0.0
    total_s: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        """The figures as plain data."""
        return asdict(self)


@dataclass
class CoveringNetwork:
    """A network covering a place: public facts; ids and codes only for staff."""

    name: str
    kind: NetworkKind
    status: NetworkStatus
    how_to_join: str | None = None
    id: int | None = None
    code: str | None = None
    nis_code: str | None = None
    police_zone_code: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The facts as plain data; those not given to the caller left out."""
        facts = {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "kind": self.kind.value if isinstance(self.kind, NetworkKind) else self.kind,
            "status": self.status.value if isinstance(self.status, NetworkStatus) else self.status,
            "how_to_join": self.how_to_join,
            "nis_code": self.nis_code,
            "police_zone_code": self.police_zone_code,
        }
        return {k: v for k, v in facts.items() if v is not None}


@dataclass
class Covering:
    """The networks covering an address or a point (Lambert 72 ``x``, ``y``)."""

    x: float | None
    y: float | None
    address_id: int | None = None
    located: bool = True
    approximate: bool | None = None  # for an address: whether its position is approximate
    networks: list[CoveringNetwork] = field(default_factory=list)


def rematch_all(engine: Engine, *, progress: Progress | None = None) -> MatchStats:
    """Match every located address to every network covering it, in one transaction."""
    with engine.begin() as connection:
        return rematch(connection, progress=progress)


def rematch_network(
    connection: Connection, network_id: int, *, previous: BaseGeometry | None = None
) -> MatchStats:
    """Bring one network's stored addresses up to date (in the caller's transaction).

    With ``previous``, the area the stored matches were computed for (empty for a new network),
    only the addresses where the two areas differ are read and compared: the others keep their
    matches. Without it, every address of the network's bounding box is.
    """
    if previous is None:
        return rematch(connection, network_ids=[network_id])
    stats = MatchStats()
    started = time.perf_counter()
    ((_, area),) = match_repo.load_polygons(connection, [network_id])
    stored = match_repo.stored_pairs(connection, [network_id])
    # The network's own addresses tell how dense the place is: few, and one box is cheapest.
    density = len(stored) / previous.area if previous.area > 0 else None
    try:
        boxes = changed_boxes(previous, area, density=density)
    except shapely.errors.GEOSException:
        # An overlay GEOS cannot compute: fall back to the whole bounding box.
        return rematch(connection, network_ids=[network_id])
    points = match_repo.load_points(connection, boxes=boxes)
    stats.networks, stats.addresses = 1, len(points)
    stats.load_s = time.perf_counter() - started

    started = time.perf_counter()
    pairs = match(points, [(network_id, area)])
    stats.match_s = time.perf_counter() - started
    stats.pairs = len(pairs)

    started = time.perf_counter()
    # Compared only where the areas differ: elsewhere the stored matches stand.
    where = np.isin(stored.address_ids, points.ids)
    added, removed = difference(pairs, Pairs(stored.network_ids[where], stored.address_ids[where]))
    match_repo.remove_pairs(connection, removed)
    match_repo.add_pairs(connection, added)
    stats.added, stats.removed = len(added), len(removed)
    stats.store_s = time.perf_counter() - started
    stats.total_s = stats.load_s + stats.match_s + stats.store_s
    return stats


def rematch_changed_networks(connection: Connection) -> MatchStats:
    """Rematch the networks inserted or changed by the caller's transaction (an import)."""
    return rematch(connection, network_ids=match_repo.networks_changed_in_transaction(connection))


def rematch(
    connection: Connection,
    *,
    network_ids: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> MatchStats:
    """Recompute the pairs of all networks (or of ``network_ids``) and store the difference.

    Only pairs that change are written, so rerunning it on current data writes nothing; a first
    match of many pairs rewrites the table in bulk.
    """
    stats = MatchStats()
    started = time.perf_counter()
    if network_ids is None:
        match_repo.lock_for_full_rematch(connection)
    polygons = match_repo.load_polygons(connection, network_ids)
    if network_ids is None or len(polygons) > MAX_BOXES:
        boxes = None
    else:
        boxes = [g.bounds for _, g in polygons if not g.is_empty]
    # Without networks there is nothing to match: skip reading the points.
    points = match_repo.load_points(connection, boxes=boxes if polygons else [])
    stats.networks, stats.addresses = len(polygons), len(points)
    stats.load_s = time.perf_counter() - started
    _say(progress, f"loaded {stats.addresses:,} located addresses, {stats.networks:,} networks")

    started = time.perf_counter()
    pairs = match(points, polygons)
    stats.match_s = time.perf_counter() - started
    stats.pairs = len(pairs)
    stats.covered_addresses = int(len(set(pairs.address_ids.tolist()))) if len(pairs) else 0
    _say(progress, f"matched: {stats.pairs:,} pairs in {stats.match_s:.2f} s")

    started = time.perf_counter()
    stats.added, stats.removed = _store(connection, pairs, network_ids)
    stats.store_s = time.perf_counter() - started
    stats.total_s = stats.load_s + stats.match_s + stats.store_s
    _say(progress, f"stored: {stats.added:,} added, {stats.removed:,} removed")
    return stats


def networks_covering(
    engine: Engine,
    actor: Actor,
    *,
    address_id: int | None = None,
    point: tuple[float, float] | None = None,
    language: str = "nl",
) -> Covering:
    """The networks covering an address (stored matches) or a point given as (lon, lat).

    Anyone may ask: residents get name, kind, status and how to join of the networks that still
    take members; staff also get ids and codes, and closed networks. How to join is the
    network's own text, else one generated in ``language`` (nl or fr) naming its municipality
    and police zone.
    """
    if (address_id is None) == (point is None):
        raise InvalidInput("give either an address id or a point (lon, lat), not both")
    if language not in JOIN_LANGUAGES:
        raise InvalidInput(f"language {language!r} is not one of {', '.join(JOIN_LANGUAGES)}")
    staff = actor.principal.role is not None
    with engine.connect() as connection:
        if address_id is not None:
            row = match_repo.address_position(connection, address_id)
            if row is None:
                raise NotFound(f"no address {address_id}")
            covering = Covering(
                x=row[1],
                y=row[2],
                address_id=address_id,
                located=row[1] is not None,
                approximate=row[3] is not None,
            )
            found = networks_of_addresses(connection, [address_id], staff=staff, language=language)
            covering.networks = found[address_id]
            return covering
        x, y = lonlat_to_storage(*point)
        covering = Covering(x=x, y=y)
        rows = [
            r
            for r in match_repo.networks_near(connection, x, y)
            if covers_xy(shapely.from_wkb(bytes(r.wkb)), x, y)
        ]
        covering.networks = list(_covering_networks(connection, rows, staff, language).values())
    return covering


def networks_of_addresses(
    connection: Connection, address_ids: Sequence[int], *, staff: bool, language: str = "nl"
) -> dict[int, list[CoveringNetwork]]:
    """The stored networks covering each of ``address_ids`` (every id a key), as
    :func:`networks_covering` gives them: residents see no ids, codes or closed networks."""
    pairs = match_repo.network_ids_of_addresses(connection, address_ids)
    ids = sorted({network_id for _, network_id in pairs})
    rows = match_repo.network_facts(connection, ids) if ids else []
    shown = _covering_networks(connection, rows, staff, language)
    found: dict[int, list[CoveringNetwork]] = {int(a): [] for a in address_ids}
    for address_id, network_id in pairs:
        if network_id in shown:
            found[address_id].append(shown[network_id])
    return found


def _covering_networks(
    connection: Connection, rows: Sequence, staff: bool, language: str
) -> dict[int, CoveringNetwork]:
    """The networks of ``rows`` by id (in the order of ``rows``) as the caller may see them:
    closed ones left out for residents."""
    rows = [r for r in rows if staff or r.status not in CLOSED]
    places = _place_names(connection, rows, language)
    return {r.id: _covering_network(r, staff, places, language) for r in rows}


def _place_names(
    connection: Connection, rows: Sequence, language: str
) -> dict[tuple[AreaLevel, str], str]:
    """Names of the networks' municipalities and zones in ``language`` (else the other one)."""
    names: dict[tuple[AreaLevel, str], str] = {}
    for level, attribute in (
        (AreaLevel.municipality, "nis_code"),
        (AreaLevel.police_zone, "police_zone_code"),
    ):
        codes = sorted({getattr(r, attribute) for r in rows if getattr(r, attribute)})
        for code, (nl, fr) in match_repo.place_names(connection, level, codes).items():
            preferred = (fr, nl) if language == "fr" else (nl, fr)
            name = next((n for n in preferred if n), None)
            if name:
                names[level, code] = name
    return names


def _covering_network(
    row, staff: bool, places: dict[tuple[AreaLevel, str], str], language: str
) -> CoveringNetwork:
    how_to_join = row.how_to_join or join_text(
        language,
        name=row.name,
        kind=row.kind,
        municipality=places.get((AreaLevel.municipality, row.nis_code)),
        nis_code=row.nis_code,
        police_zone=places.get((AreaLevel.police_zone, row.police_zone_code)),
        police_zone_code=row.police_zone_code,
    )
    network = CoveringNetwork(
        name=row.name, kind=row.kind, status=row.status, how_to_join=how_to_join
    )
    if staff:
        network.id, network.code = row.id, row.code
        network.nis_code, network.police_zone_code = row.nis_code, row.police_zone_code
    return network


def _store(
    connection: Connection, pairs: Pairs, network_ids: Sequence[int] | None
) -> tuple[int, int]:
    old = match_repo.stored_pairs(connection, network_ids)
    added, removed = difference(pairs, old)
    if network_ids is None and len(added) >= match_repo.BULK_REWRITE_MIN:
        match_repo.replace_all_pairs(connection, pairs)
    else:
        match_repo.remove_pairs(connection, removed)
        match_repo.add_pairs(connection, added)
    return len(added), len(removed)


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
