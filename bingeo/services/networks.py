"""Networks as a resource: list, read, create, change and delete, under the access rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
from geoalchemy2.shape import from_shape
from shapely import wkb as shapely_wkb
from shapely.geometry import MultiPolygon
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from bingeo.access import Action, Actor, Target, allowed
from bingeo.db import matching as match_repo
from bingeo.db import networks as network_repo
from bingeo.db import planning as planning_repo
from bingeo.db.models import SRID, NetworkKind, NetworkStatus
from bingeo.errors import Conflict, IllegalTransition, NetworkHasPeople, NotFound
from bingeo.networks import check_public_join_text
from bingeo.services.audit import guard, record
from bingeo.services.matching import rematch_changed_networks, rematch_network
from bingeo.services.principal_cache import forget_principals

MAX_ID = 2**31 - 1  # the largest value of a PostgreSQL integer id


@dataclass
class NetworkRecord:
    """A stored network: public facts only (no personal data)."""

    id: int
    code: str
    name: str
    kind: NetworkKind
    status: NetworkStatus
    nis_code: str | None
    police_zone_code: str | None
    nis_codes: list[str]
    police_zone_codes: list[str]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    geometry: MultiPolygon
    how_to_join: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def area_m2(self) -> float:
        """Area of the network in square metres (Lambert 72)."""
        return float(self.geometry.area)

    @property
    def crossing(self) -> bool:
        """True when the area lies in more than one municipality or police zone."""
        return len(self.nis_codes) > 1 or len(self.police_zone_codes) > 1

    @property
    def target(self) -> Target:
        """The scope this network belongs to, for the access rules."""
        return network_target(self.id, self.nis_codes, self.police_zone_codes)


@dataclass
class NetworkFilter:
    """Filters of a network listing (``bbox`` in EPSG:31370)."""

    kind: NetworkKind | None = None
    status: NetworkStatus | None = None
    nis_code: str | None = None
    police_zone_code: str | None = None
    bbox: tuple[float, float, float, float] | None = None


def network_target(
    network_id: int | None, nis_codes: Iterable[str | None], zones: Iterable[str | None]
) -> Target:
    """The access target of a network from the municipalities and police zones it lies in."""
    return Target(
        network_id=network_id,
        nis_codes=frozenset(c for c in nis_codes if c),
        police_zone_codes=frozenset(c for c in zones if c),
    )


def list_networks(
    engine: Engine, actor: Actor, filters: NetworkFilter, *, limit: int, offset: int = 0
) -> tuple[list[NetworkRecord], int]:
    """A page of networks (public facts, open to everyone) and the number matching."""
    with engine.connect() as connection:
        rows, total = network_repo.list_networks(
            connection,
            kind=filters.kind,
            status=filters.status,
            nis_code=filters.nis_code,
            police_zone_code=filters.police_zone_code,
            bbox=filters.bbox,
            limit=limit,
            offset=offset,
        )
    return [_record(row) for row in rows], total


def get_network(engine: Engine, actor: Actor, network_id: int) -> NetworkRecord:
    """One network's public facts."""
    if not 1 <= network_id <= MAX_ID:  # ids beyond PostgreSQL's integer range cannot exist
        raise NotFound(f"no network {network_id}")
    with engine.connect() as connection:
        row = network_repo.get_network(connection, network_id)
    if row is None:
        raise NotFound(f"no network {network_id}")
    return _record(row)


def create_network(
    engine: Engine,
    actor: Actor,
    *,
    name: str,
    kind: NetworkKind,
    geometry: MultiPolygon,
    status: NetworkStatus = NetworkStatus.idea,
    code: str | None = None,
    how_to_join: str | None = None,
    warnings: list[str] | None = None,
) -> NetworkRecord:
    """Store a new network; where it lies (municipalities, police zones) is derived from its
    area, and the caller must have the right to write networks in all of them."""
    geom = from_shape(geometry, srid=SRID)
    with engine.connect() as connection:
        nis_codes, zones = network_repo.places_of(connection, geom)
    target = network_target(None, nis_codes, zones)
    guard(engine, actor, Action.write_network, target, "network")
    values = {
        "code": code or _new_code(nis_codes[0] if nis_codes else None),
        "name": name,
        "kind": NetworkKind(kind),
        "status": NetworkStatus(status),
        "how_to_join": _join_text_or_none(how_to_join),
        "geom": geom,
    }
    try:
        with engine.begin() as connection:
            network_id = network_repo.insert_network(connection, values)
            rematch_network(connection, network_id, previous=MultiPolygon())
            record(connection, actor, "create", "network", network_id, target=target)
    except IntegrityError as exc:
        raise Conflict(f"a network with code {values['code']!r} exists already") from exc
    created = get_network(engine, actor, network_id)
    created.warnings = list(warnings or [])
    return created


def update_network(
    engine: Engine,
    actor: Actor,
    network_id: int,
    *,
    version: int,
    changes: dict,
    warnings: list[str] | None = None,
    reason: str | None = None,
) -> NetworkRecord:
    """Change a network if ``version`` is still current; a stale version is a ``Conflict``.

    A changed area keeps the previous one as a version (who, when, ``reason``); members whose
    address falls outside the new area are flagged, never removed.
    """
    current = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_network, current.target, "network", network_id)
    values = dict(changes)
    if "status" in values and NetworkStatus(values["status"]) != current.status:
        # Each lifecycle step checks its own facts and is recorded: no shortcut around it.
        raise IllegalTransition(
            f"network {network_id} is {current.status.value}: change its status through its "
            "lifecycle (POST /networks/{id}/lifecycle), not by editing the network"
        )
    values.pop("status", None)
    if "how_to_join" in values:
        values["how_to_join"] = _join_text_or_none(values["how_to_join"])
    after = current.target
    if "geometry" in values:
        values["geom"] = from_shape(values.pop("geometry"), srid=SRID)
        with engine.connect() as connection:
            after = network_target(network_id, *network_repo.places_of(connection, values["geom"]))
        # Moving a network into another municipality or zone needs rights there too.
        guard(engine, actor, Action.write_network, after, "network", network_id)
    with engine.begin() as connection:
        if "geom" in values:
            planning_repo.keep_version(
                connection, network_id, version, changed_by=actor.principal.name, reason=reason
            )
        if not network_repo.update_network(connection, network_id, version, values):
            raise Conflict(
                f"network {network_id} is at version {current.version}, not {version}; "
                "reload it and apply the change again"
            )
        if "geom" in values:
            # The stored matches are those of the area read above if that is the version the
            # update replaced (versions only grow): then only where the areas differ is compared.
            previous = current.geometry if current.version == version else None
            rematch_network(connection, network_id, previous=previous)
            planning_repo.flag_members_outside(connection, network_id)
        record(
            connection,
            actor,
            "update",
            "network",
            network_id,
            target=after,
            details={"fields": sorted(changes), "from_version": version},
        )
    updated = get_network(engine, actor, network_id)
    updated.warnings = list(warnings or [])
    return updated


def delete_network(
    engine: Engine, actor: Actor, network_id: int, *, version: int, remove_people: bool = False
) -> None:
    """Delete a network if ``version`` is still current.

    Ending a network is a lifecycle step (``dissolved``, ``merged``) that keeps its history.
    Deleting one that has members or contacts removes those people too: only an admin may, and
    only when asking for it (``remove_people``); the audit records how many were removed.
    """
    current = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_network, current.target, "network", network_id)
    with engine.begin() as connection:
        members, contacts = planning_repo.people_of(connection, network_id)
        if (members or contacts) and not (remove_people and allowed(actor.principal, Action.admin)):
            raise NetworkHasPeople(
                f"network {network_id} has {members} members and {contacts} contacts: end it "
                "through its lifecycle (dissolved or merged); only an admin may delete it with "
                "its people (remove_people=true)"
            )
        if not network_repo.delete_network(connection, network_id, version):
            raise Conflict(f"network {network_id} is at version {current.version}, not {version}")
        record(
            connection,
            actor,
            "delete",
            "network",
            network_id,
            target=current.target,
            details={"members_removed": members, "contacts_removed": contacts},
        )
    # Its coordinators lost their scope (users.network_id set to NULL).
    forget_principals()


def store_networks(
    connection: Connection,
    frame: gpd.GeoDataFrame,
    *,
    changed_by: str | None,
    reason: str | None,
) -> tuple[int, int]:
    """Upsert networks from a file or a street list, in the caller's transaction.

    The same consequences as an edit: replaced areas kept as versions, addresses rematched, and
    members whose address falls outside a changed area flagged (never removed).
    """
    inserted, updated = network_repo.upsert_networks(
        connection, frame, changed_by=changed_by, reason=reason
    )
    changed = match_repo.networks_changed_in_transaction(connection)
    network_repo.refresh_places(connection, changed)
    rematch_changed_networks(connection)
    for network_id in changed:
        planning_repo.flag_members_outside(connection, network_id)
    return inserted, updated


def _record(row) -> NetworkRecord:
    values = dict(row._mapping)
    geometry = shapely_wkb.loads(bytes(values.pop("wkb")))
    return NetworkRecord(**values, geometry=geometry)


def _join_text_or_none(text: str | None) -> str | None:
    # A blank text means "none": residents then get the generated one.
    return check_public_join_text(text)


def _new_code(nis_code: str | None) -> str:
    import secrets

    return f"{nis_code or 'BIN'}-{secrets.token_hex(3).upper()}"
