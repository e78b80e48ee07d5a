"""Repository of planning: area versions, lifecycle facts and steps, roles, report queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from geoalchemy2.elements import WKBElement
from shapely import wkb as shapely_wkb
from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    any_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bingeo.db.models import (
    Address,
    AddressNetwork,
    Alert,
    AlertNetwork,
    AlertStatus,
    AreaLevel,
    ContactRole,
    Member,
    Network,
    NetworkContact,
    NetworkLifecycle,
    NetworkStatus,
    NetworkTransition,
    NetworkVersion,
    PoliceZoneMunicipality,
    ReferenceArea,
)
from bingeo.planning import RoleSummary

NETWORKS = Network.__table__
VERSIONS = NetworkVersion.__table__
TRANSITIONS = NetworkTransition.__table__
LIFECYCLE = NetworkLifecycle.__table__
CONTACTS = NetworkContact.__table__
MEMBERS = Member.__table__
ADDRESSES = Address.__table__
PAIRS = AddressNetwork.__table__
AREAS = ReferenceArea.__table__
ZONE_MEMBERS = PoliceZoneMunicipality.__table__
CONTACT_FIELDS = (
    "role",
    "name",
    "email",
    "phone",
    "language",
    "adult",
    "screened",
    "screened_at",
    "organisation",
)


def _ids(values: Sequence[int]):
    return bindparam(None, list(map(int, values)), type_=ARRAY(BigInteger))


# Versions --------------------------------------------------------------------------------------


def keep_version(
    connection: Connection,
    network_id: int,
    version: int,
    *,
    changed_by: str | None,
    reason: str | None,
) -> int:
    """Copy the network's area at ``version`` into its history; 0 rows when the version is stale."""
    source = select(
        NETWORKS.c.id,
        NETWORKS.c.version,
        NETWORKS.c.geom,
        literal(changed_by).label("changed_by"),
        literal(reason).label("reason"),
    ).where(NETWORKS.c.id == network_id, NETWORKS.c.version == version)
    result = connection.execute(
        insert(VERSIONS).from_select(
            ["network_id", "version", "geom", "changed_by", "reason"], source
        )
    )
    return result.rowcount


def list_versions(connection: Connection, network_id: int) -> list:
    """Previous areas of a network, newest first, with ``wkb`` and ``area_m2``."""
    return connection.execute(
        select(
            VERSIONS.c.version,
            VERSIONS.c.changed_by,
            VERSIONS.c.changed_at,
            VERSIONS.c.reason,
            func.ST_Area(VERSIONS.c.geom).label("area_m2"),
            func.ST_AsBinary(VERSIONS.c.geom).label("wkb"),
        )
        .where(VERSIONS.c.network_id == network_id)
        .order_by(VERSIONS.c.version.desc())
    ).all()


def flag_members_outside(connection: Connection, network_id: int) -> tuple[int, int]:
    """Set ``outside_area`` of the network's members from the stored matching: (now out, back in).

    Members are never removed here: their coordinator decides.
    """
    covered = (
        select(PAIRS.c.address_id)
        .where(PAIRS.c.network_id == network_id, PAIRS.c.address_id == MEMBERS.c.address_id)
        .exists()
    )
    flagged = connection.execute(
        update(MEMBERS)
        .where(MEMBERS.c.network_id == network_id, ~MEMBERS.c.outside_area, ~covered)
        .values(outside_area=True)
    ).rowcount
    cleared = connection.execute(
        update(MEMBERS)
        .where(MEMBERS.c.network_id == network_id, MEMBERS.c.outside_area, covered)
        .values(outside_area=False)
    ).rowcount
    return flagged, cleared


# Lifecycle -------------------------------------------------------------------------------------


def lifecycle(connection: Connection, network_id: int) -> tuple[dict, dt.datetime | None]:
    """(facts, members_changed_at) of a network; empty facts when nothing was recorded."""
    row = connection.execute(
        select(LIFECYCLE.c.facts, LIFECYCLE.c.members_changed_at).where(
            LIFECYCLE.c.network_id == network_id
        )
    ).first()
    if row is None:
        return {}, None
    return dict(row.facts or {}), row.members_changed_at


def save_facts(connection: Connection, network_id: int, facts: dict) -> None:
    """Store the whole facts mapping of a network (the caller merged it)."""
    statement = pg_insert(LIFECYCLE).values(network_id=network_id, facts=facts)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["network_id"], set_={"facts": facts, "updated_at": func.now()}
        )
    )


def set_status(
    connection: Connection, network_id: int, current: NetworkStatus, target: NetworkStatus
) -> bool:
    """Move the network from ``current`` to ``target`` (the version increases); False if moved."""
    result = connection.execute(
        update(NETWORKS)
        .where(NETWORKS.c.id == network_id, NETWORKS.c.status == current)
        .values(status=target, version=NETWORKS.c.version + 1, updated_at=func.now())
    )
    return result.rowcount == 1


def add_transition(
    connection: Connection,
    network_id: int,
    current: NetworkStatus,
    target: NetworkStatus,
    *,
    by: str | None,
    facts: dict,
) -> int:
    """Record a lifecycle step; returns its id."""
    return connection.execute(
        insert(TRANSITIONS)
        .values(network_id=network_id, from_status=current, to_status=target, by=by, facts=facts)
        .returning(TRANSITIONS.c.id)
    ).scalar_one()


def transitions(connection: Connection, network_id: int) -> list:
    """The lifecycle steps of a network, oldest first."""
    return connection.execute(
        select(TRANSITIONS)
        .where(TRANSITIONS.c.network_id == network_id)
        .order_by(TRANSITIONS.c.at, TRANSITIONS.c.id)
    ).all()


def role_summary(connection: Connection, network_id: int) -> RoleSummary:
    """Counts of the roles of a network (no identities leave this function)."""
    role = CONTACTS.c.role
    ok = and_(role == ContactRole.coordinator, CONTACTS.c.adult, CONTACTS.c.screened)
    row = connection.execute(
        select(
            func.count().filter(role == ContactRole.coordinator),
            func.count().filter(ok),
            func.count().filter(role == ContactRole.police_officer),
            func.count().filter(role == ContactRole.local_authority),
            func.count().filter(role == ContactRole.self_employed),
        ).where(CONTACTS.c.network_id == network_id)
    ).one()
    return RoleSummary(*(int(v) for v in row))


def activity(connection: Connection, status: NetworkStatus) -> list:
    """Networks in ``status`` with the dates their members and their status last changed."""
    last_member = (
        select(func.max(func.greatest(MEMBERS.c.created_at, MEMBERS.c.updated_at)))
        .where(MEMBERS.c.network_id == NETWORKS.c.id)
        .scalar_subquery()
    )
    entered = (
        select(func.max(TRANSITIONS.c.at))
        .where(TRANSITIONS.c.network_id == NETWORKS.c.id, TRANSITIONS.c.to_status == status)
        .scalar_subquery()
    )
    return connection.execute(
        select(
            NETWORKS.c.id,
            NETWORKS.c.code,
            NETWORKS.c.name,
            NETWORKS.c.kind,
            NETWORKS.c.nis_code,
            NETWORKS.c.police_zone_code,
            NETWORKS.c.nis_codes,
            NETWORKS.c.police_zone_codes,
            NETWORKS.c.created_at,
            LIFECYCLE.c.members_changed_at,
            last_member.label("last_member_at"),
            entered.label("status_since"),
        )
        .select_from(NETWORKS.outerjoin(LIFECYCLE, LIFECYCLE.c.network_id == NETWORKS.c.id))
        .where(NETWORKS.c.status == status)
        .order_by(NETWORKS.c.id)
    ).all()


def last_messages(connection: Connection) -> dict[int, dt.datetime]:
    """The time of the last message (alert, not cancelled) each network received."""
    alerts, reached = Alert.__table__, AlertNetwork.__table__
    rows = connection.execute(
        select(reached.c.network_id, func.max(alerts.c.created_at))
        .join(alerts, alerts.c.id == reached.c.alert_id)
        .where(alerts.c.status != AlertStatus.cancelled)
        .group_by(reached.c.network_id)
    )
    return {int(network_id): at for network_id, at in rows}


# Contacts (personal data: only services that checked access call these) ----------------------


def list_contacts(connection: Connection, network_id: int) -> list:
    """The contacts of a network, by role then id."""
    return connection.execute(
        select(CONTACTS)
        .where(CONTACTS.c.network_id == network_id)
        .order_by(CONTACTS.c.role, CONTACTS.c.id)
    ).all()


def get_contact(connection: Connection, contact_id: int):
    """One contact row or None."""
    return connection.execute(select(CONTACTS).where(CONTACTS.c.id == contact_id)).first()


def add_contact(connection: Connection, network_id: int, values: dict) -> int:
    """Insert a contact; returns its id."""
    return connection.execute(
        insert(CONTACTS).values(network_id=network_id, **values).returning(CONTACTS.c.id)
    ).scalar_one()


def update_contact(connection: Connection, contact_id: int, values: dict) -> None:
    """Replace the fields of a contact."""
    connection.execute(update(CONTACTS).where(CONTACTS.c.id == contact_id).values(**values))


def remove_contact(connection: Connection, contact_id: int) -> None:
    """Delete a contact."""
    connection.execute(delete(CONTACTS).where(CONTACTS.c.id == contact_id))


# Report queries --------------------------------------------------------------------------------


def areas_crossed(connection: Connection, geom: WKBElement, levels: Sequence[AreaLevel]) -> list:
    """Reference areas of ``levels`` sharing area with ``geom``: level, code, names, overlap."""
    overlap = func.ST_Area(func.ST_Intersection(AREAS.c.geom, geom))
    return connection.execute(
        select(
            AREAS.c.level,
            AREAS.c.code,
            AREAS.c.name_nl,
            AREAS.c.nis_code,
            overlap.label("overlap_m2"),
        )
        .where(AREAS.c.level.in_(list(levels)), func.ST_Intersects(AREAS.c.geom, geom))
        .order_by(AREAS.c.level, AREAS.c.code)
    ).all()


def has_areas(connection: Connection, level: AreaLevel) -> bool:
    """Whether any reference area of ``level`` is loaded."""
    return (
        connection.execute(select(AREAS.c.id).where(AREAS.c.level == level).limit(1)).first()
        is not None
    )


def zones_of(connection: Connection, nis_codes: Sequence[str]) -> dict[str, list[str]]:
    """Police zones of municipalities (NIS code -> zone codes)."""
    rows = connection.execute(
        select(ZONE_MEMBERS.c.nis_code, ZONE_MEMBERS.c.police_zone_code)
        .where(ZONE_MEMBERS.c.nis_code.in_(list(nis_codes)))
        .order_by(ZONE_MEMBERS.c.police_zone_code)
    )
    zones: dict[str, list[str]] = {}
    for nis, zone in rows:
        zones.setdefault(nis, []).append(zone)
    return zones


def overlapping_networks(
    connection: Connection, geom: WKBElement, *, exclude: int | None = None
) -> list:
    """Networks sharing area with ``geom``, with the overlap (its area in m², its perimeter in m)
    and ``wkb`` of their area."""
    shared = func.ST_Intersection(NETWORKS.c.geom, geom)
    overlap = func.ST_Area(shared)
    query = select(
        NETWORKS.c.id,
        NETWORKS.c.code,
        NETWORKS.c.name,
        NETWORKS.c.kind,
        NETWORKS.c.status,
        NETWORKS.c.nis_code,
        NETWORKS.c.police_zone_code,
        overlap.label("overlap_m2"),
        func.ST_Perimeter(shared).label("overlap_perimeter_m"),
        func.ST_AsBinary(NETWORKS.c.geom).label("wkb"),
    ).where(func.ST_Intersects(NETWORKS.c.geom, geom))
    if exclude is not None:
        query = query.where(NETWORKS.c.id != exclude)
    return connection.execute(query.order_by(NETWORKS.c.id)).all()


def networks_by_id(connection: Connection, network_ids: Sequence[int]) -> list:
    """Networks (public facts and ``wkb``) by id."""
    return connection.execute(
        select(
            NETWORKS.c.id,
            NETWORKS.c.code,
            NETWORKS.c.name,
            NETWORKS.c.status,
            func.ST_AsBinary(NETWORKS.c.geom).label("wkb"),
        )
        .where(NETWORKS.c.id.in_(list(network_ids)))
        .order_by(NETWORKS.c.id)
    ).all()


def nearest_networks(
    connection: Connection, geom: WKBElement, *, limit: int, exclude: Sequence[int] = ()
) -> list:
    """The ``limit`` networks nearest to ``geom`` (not touching it) with their distance in m."""
    query = (
        select(
            NETWORKS.c.id,
            NETWORKS.c.code,
            NETWORKS.c.name,
            NETWORKS.c.status,
            func.ST_Distance(NETWORKS.c.geom, geom).label("distance_m"),
        )
        .where(~func.ST_Intersects(NETWORKS.c.geom, geom))
        .order_by(NETWORKS.c.geom.op("<->")(geom))
        .limit(limit)
    )
    if exclude:
        query = query.where(NETWORKS.c.id.not_in(list(exclude)))
    return connection.execute(query).all()


def covered_elsewhere(
    connection: Connection, address_ids: Sequence[int], *, exclude: int | None = None
) -> dict[int, list[int]]:
    """For each network (but ``exclude``), which of ``address_ids`` it covers (stored matching)."""
    if not len(address_ids):
        return {}
    query = select(PAIRS.c.network_id, PAIRS.c.address_id).where(
        PAIRS.c.address_id == any_(_ids(address_ids))
    )
    if exclude is not None:
        query = query.where(PAIRS.c.network_id != exclude)
    found: dict[int, list[int]] = {}
    for network_id, address_id in connection.execute(query.order_by(PAIRS.c.address_id)):
        found.setdefault(int(network_id), []).append(int(address_id))
    return found


def members_at(
    connection: Connection, address_ids: Sequence[int], *, exclude: int | None = None
) -> dict[int, int]:
    """Number of members living at ``address_ids``, per network (aggregate only)."""
    if not len(address_ids):
        return {}
    query = (
        select(MEMBERS.c.network_id, func.count())
        .where(MEMBERS.c.address_id == any_(_ids(address_ids)))
        .group_by(MEMBERS.c.network_id)
    )
    if exclude is not None:
        query = query.where(MEMBERS.c.network_id != exclude)
    return {int(n): int(c) for n, c in connection.execute(query)}


def address_labels(connection: Connection, address_ids: Sequence[int]) -> list:
    """Street, number, box, postcode and municipality of addresses, in street order."""
    if not len(address_ids):
        return []
    return connection.execute(
        select(
            ADDRESSES.c.id,
            ADDRESSES.c.street,
            ADDRESSES.c.house_number,
            ADDRESSES.c.box,
            ADDRESSES.c.postcode,
            ADDRESSES.c.municipality,
        )
        .where(ADDRESSES.c.id == any_(_ids(address_ids)))
        .order_by(*_street_order())
    ).all()


def network_addresses(connection: Connection, network_id: int) -> list:
    """Every address a network covers (stored matching), in street order."""
    return connection.execute(
        select(
            ADDRESSES.c.id,
            ADDRESSES.c.street,
            ADDRESSES.c.house_number,
            ADDRESSES.c.box,
            ADDRESSES.c.postcode,
            ADDRESSES.c.municipality,
        )
        .join(PAIRS, PAIRS.c.address_id == ADDRESSES.c.id)
        .where(PAIRS.c.network_id == network_id)
        .order_by(*_street_order())
    ).all()


def _street_order() -> tuple:
    digits = func.substring(ADDRESSES.c.house_number, r"^\d+")
    number = cast(digits, BigInteger)
    return (
        ADDRESSES.c.postcode,
        ADDRESSES.c.street,
        number.nulls_last(),
        ADDRESSES.c.house_number,
        ADDRESSES.c.box.nulls_first(),
        ADDRESSES.c.id,
    )


def area_shapes(connection: Connection, codes: Sequence[str], level: AreaLevel) -> list:
    """The shapes (shapely, EPSG:31370) of reference areas of ``level`` by code."""
    if not codes:
        return []
    rows = connection.execute(
        select(func.ST_AsBinary(AREAS.c.geom)).where(
            AREAS.c.level == level, AREAS.c.code.in_(list(codes))
        )
    ).scalars()
    return [shapely_wkb.loads(bytes(wkb)) for wkb in rows]


def people_of(connection: Connection, network_id: int) -> tuple[int, int]:
    """How many members and contacts (people) a network has."""
    members = select(func.count()).where(MEMBERS.c.network_id == network_id).scalar_subquery()
    contacts = select(func.count()).where(CONTACTS.c.network_id == network_id).scalar_subquery()
    found = connection.execute(select(members, contacts)).one()
    return int(found[0]), int(found[1])
