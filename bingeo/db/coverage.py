"""Repository of coverage facts: areas of a scope, the stored area of each address, networks.

``address_areas`` holds the reference area of every located address per level, so coverage is
a count over stored facts; it is written and read with binary ``COPY`` (millions of rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from psycopg import sql
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Table,
    any_,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from bingeo.db.bulk import BINARY_HEADER, BINARY_TRAILER, copy_out_arrays, staging_table
from bingeo.db.matching import BULK_REWRITE_MIN, NETWORK_FACTS
from bingeo.db.models import (
    Address,
    AddressArea,
    AddressAreaState,
    AreaLevel,
    Member,
    Network,
    PoliceZoneMunicipality,
    ReferenceArea,
)
from bingeo.db.versions import versions_of
from bingeo.matching import Pairs, difference

AREAS = ReferenceArea.__table__
ADDRESSES = Address.__table__
ADDRESS_AREAS = AddressArea.__table__
STATE = AddressAreaState.__table__
NETWORKS = Network.__table__
MEMBERS = Member.__table__
ZONES = PoliceZoneMunicipality.__table__
_CHUNK = 1_000_000


def scope_areas(
    connection: Connection,
    level: AreaLevel,
    *,
    nis_codes: Sequence[str] | None = None,
    zone_codes: Sequence[str] | None = None,
) -> list:
    """Areas of ``level`` (id, code, name_nl, nis_code, wkb) in the scope, ordered by id.

    The scope is a set of municipalities (``nis_codes``) or, for the police-zone level, of
    zones; None means the whole country.
    """
    query = (
        select(
            AREAS.c.id,
            AREAS.c.code,
            AREAS.c.name_nl,
            AREAS.c.nis_code,
            func.ST_AsBinary(AREAS.c.geom).label("wkb"),
        )
        .where(AREAS.c.level == level)
        .order_by(AREAS.c.id)
    )
    if level == AreaLevel.police_zone and zone_codes is not None:
        query = query.where(AREAS.c.code.in_(list(zone_codes)))
    elif level == AreaLevel.municipality and nis_codes is not None:
        query = query.where(AREAS.c.code.in_(list(nis_codes)))
    elif nis_codes is not None:
        query = query.where(AREAS.c.nis_code.in_(list(nis_codes)))
    return connection.execute(query).all()


def levels_in_scope(
    connection: Connection,
    *,
    nis_codes: Sequence[str] | None = None,
    zone_codes: Sequence[str] | None = None,
) -> dict[AreaLevel, set[str]]:
    """The levels with areas in the scope (as ``scope_areas`` selects them) and the
    municipalities (NIS codes) each of them has areas in; police zones map to no municipality."""
    municipality = func.coalesce(AREAS.c.nis_code, AREAS.c.code)
    query = select(AREAS.c.level, municipality).distinct()
    if nis_codes is not None:
        query = query.where(
            ((AREAS.c.level == AreaLevel.police_zone) & AREAS.c.code.in_(list(zone_codes or [])))
            | ((AREAS.c.level == AreaLevel.municipality) & AREAS.c.code.in_(list(nis_codes)))
            | (
                AREAS.c.level.not_in([AreaLevel.police_zone, AreaLevel.municipality])
                & AREAS.c.nis_code.in_(list(nis_codes))
            )
        )
    found: dict[AreaLevel, set[str]] = {}
    for level, code in connection.execute(query):
        codes = found.setdefault(AreaLevel(level), set())
        if level != AreaLevel.police_zone and code is not None:
            codes.add(code)
    return found


def address_facts(
    connection: Connection, level: AreaLevel, area_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(ids, x, y, street) of the addresses stored in the given areas of ``level``, by id."""
    ids = bindparam("ids", [int(i) for i in area_ids], type_=ARRAY(BigInteger))
    rows = connection.execute(
        select(
            ADDRESSES.c.id,
            func.ST_X(ADDRESSES.c.geom),
            func.ST_Y(ADDRESSES.c.geom),
            ADDRESSES.c.street,
        )
        .join(ADDRESS_AREAS, ADDRESS_AREAS.c.address_id == ADDRESSES.c.id)
        .where(ADDRESS_AREAS.c.level == level, ADDRESS_AREAS.c.area_id == any_(ids))
        .order_by(ADDRESSES.c.id)
    ).all()
    return (
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=float),
        np.array([r[2] for r in rows], dtype=float),
        [r[3] for r in rows],
    )


def zone_municipalities(connection: Connection, zone: str) -> list[str]:
    """NIS codes of the municipalities of a police zone."""
    rows = connection.execute(
        select(ZONES.c.nis_code).where(ZONES.c.police_zone_code == zone).order_by(ZONES.c.nis_code)
    )
    return [r[0] for r in rows]


def zones_of(connection: Connection, nis_code: str) -> list[str]:
    """Police zones a municipality belongs to."""
    rows = connection.execute(
        select(ZONES.c.police_zone_code)
        .where(ZONES.c.nis_code == nis_code)
        .order_by(ZONES.c.police_zone_code)
    )
    return [r[0] for r in rows]


def fingerprint(connection: Connection, level: AreaLevel) -> str:
    """What ``address_areas`` of ``level`` depends on: the areas and the address ids.

    Cheap (index and small-table reads) so it can be checked on every request; an address moved
    in place keeps its id, so imports that move addresses call the refresh themselves.
    """
    areas = connection.execute(
        select(func.count(), func.max(AREAS.c.id), func.max(AREAS.c.imported_at)).where(
            AREAS.c.level == level
        )
    ).one()
    last_address = connection.execute(select(func.max(ADDRESSES.c.id))).scalar()
    return f"areas={areas[0]}:{areas[1]}:{areas[2]};addresses={last_address}"


def data_stamp(connection: Connection) -> tuple:
    """Everything the coverage read model is built from, in one cheap read: the versions of
    the reference areas, addresses, address-area states, networks and members (set by triggers
    on every write, so a change written around bingeo's functions shows too)."""
    return tuple(connection.execute(select(_STAMP)).scalar() or ())


def level_in_use(connection: Connection, level: AreaLevel) -> bool:
    """Whether ``level`` has reference areas or stored address areas (two index probes)."""
    areas = select(AREAS.c.id).where(AREAS.c.level == level).exists()
    placed = select(ADDRESS_AREAS.c.address_id).where(ADDRESS_AREAS.c.level == level).exists()
    return bool(connection.execute(select(areas | placed)).scalar())


def stored_state(connection: Connection, level: AreaLevel) -> tuple[str, object] | None:
    """(fingerprint, refreshed_at) of the stored ``address_areas`` of ``level`` (None: never)."""
    row = connection.execute(
        select(STATE.c.fingerprint, STATE.c.refreshed_at).where(STATE.c.level == level)
    ).first()
    return None if row is None else (row[0], row[1])


def addresses_marker(connection: Connection) -> str:
    """Changes whenever addresses are imported: the last id and the last area refresh (imports
    refresh every level, even when no stored area changes)."""
    refreshed = connection.execute(select(func.max(STATE.c.refreshed_at))).scalar()
    last_address = connection.execute(select(func.max(ADDRESSES.c.id))).scalar()
    return f"{refreshed};{last_address}"


def store_address_areas(
    connection: Connection, level: AreaLevel, new: Pairs, old: Pairs, fingerprint_: str
) -> int:
    """Make the stored areas of ``level`` equal ``new`` (``old``: what is stored now); returns
    the number of rows written or deleted. Both are (area id, address id) as ``Pairs``.

    Only the rows that change are written; many changes rewrite the level in bulk, without the
    per-row foreign-key checks (each of them locks an address row).
    """
    added, removed = _difference(new, old)
    if len(added) + len(removed) >= BULK_REWRITE_MIN:
        _rewrite_level(connection, level, new)
    else:
        if len(removed):
            staging = staging_table("staging_address_areas", [Column("address_id", BigInteger)])
            staging.create(connection)
            _copy_rows(connection, staging.name, None, removed.address_ids, None)
            connection.execute(
                delete(ADDRESS_AREAS).where(
                    ADDRESS_AREAS.c.level == level,
                    ADDRESS_AREAS.c.address_id == staging.c.address_id,
                )
            )
            staging.drop(connection)
        _copy_rows(connection, ADDRESS_AREAS.name, level, added.address_ids, added.network_ids)
    statement = insert(STATE).values(level=level, fingerprint=fingerprint_)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[STATE.c.level],
            set_={"fingerprint": fingerprint_, "refreshed_at": func.now()},
        )
    )
    return len(added) + len(removed)


def _difference(new: Pairs, old: Pairs) -> tuple[Pairs, Pairs]:
    """(rows to add, rows to delete): an address appears at most once on each side, so arrays
    indexed by address id compare them in one pass."""
    size = int(max(new.address_ids.max(initial=-1), old.address_ids.max(initial=-1))) + 1
    if size > 4 * (len(new) + len(old)) + (1 << 20):
        return difference(new, old)  # sparse ids: compare keys instead
    before = np.full(size, -1, dtype=np.int64)
    after = np.full(size, -1, dtype=np.int64)
    before[old.address_ids] = old.network_ids
    after[new.address_ids] = new.network_ids
    changed = before != after
    added = np.flatnonzero(changed & (after >= 0))
    removed = np.flatnonzero(changed & (before >= 0))
    return Pairs(after[added], added), Pairs(before[removed], removed)


def _rewrite_level(connection: Connection, level: AreaLevel, rows: Pairs) -> None:
    # Reflected, so the keys are dropped and re-made under the names the schema has.
    table = Table(ADDRESS_AREAS.name, MetaData(), autoload_with=connection)
    foreign_keys, indexes = list(table.foreign_key_constraints), list(table.indexes)
    for constraint in foreign_keys:
        connection.execute(DropConstraint(constraint))
    for index in indexes:
        connection.execute(DropIndex(index))
    connection.execute(DropConstraint(table.primary_key))
    connection.execute(delete(ADDRESS_AREAS).where(ADDRESS_AREAS.c.level == level))
    _copy_rows(connection, ADDRESS_AREAS.name, level, rows.address_ids, rows.network_ids)
    connection.execute(AddConstraint(table.primary_key))
    for index in indexes:
        connection.execute(CreateIndex(index))
    for constraint in foreign_keys:
        connection.execute(AddConstraint(constraint))


def _copy_rows(
    connection: Connection,
    table_name: str,
    level: AreaLevel | None,
    address_ids: np.ndarray,
    area_ids: np.ndarray | None,
) -> None:
    """Binary ``COPY`` of (level, address_id, area_id) rows, or of address ids alone."""
    if not len(address_ids):
        return
    fields = [("n", ">i2")]
    names = []
    if level is not None:
        label = level.value.encode()
        fields += [("l0", ">i4"), ("level", f"S{len(label)}")]
        names.append("level")
    fields += [("l1", ">i4"), ("address_id", ">i8")]
    names.append("address_id")
    if area_ids is not None:
        fields += [("l2", ">i4"), ("area_id", ">i4")]
        names.append("area_id")
    rows = np.empty(len(address_ids), dtype=np.dtype(fields))
    rows["n"], rows["l1"], rows["address_id"] = len(names), 8, address_ids
    if level is not None:
        rows["l0"], rows["level"] = len(label), label
    if area_ids is not None:
        rows["l2"], rows["area_id"] = 4, area_ids
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(table_name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(BINARY_HEADER)
        for start in range(0, len(rows), _CHUNK):
            copy.write(rows[start : start + _CHUNK].tobytes())
        copy.write(BINARY_TRAILER)


def address_areas(
    connection: Connection, level: AreaLevel, area_ids: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(address ids, area ids) stored for ``level``, of all areas or of ``area_ids``."""
    where = [ADDRESS_AREAS.c.level == level]
    if area_ids is not None:
        if not len(area_ids):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        where.append(ADDRESS_AREAS.c.area_id.in_(list(area_ids)))
    address_ids, area_ids_ = copy_out_arrays(
        connection,
        [ADDRESS_AREAS.c.address_id, ADDRESS_AREAS.c.area_id],
        ADDRESS_AREAS.c.address_id.op(">>")(16),
        [">i8", ">i4"],
        where,
    )
    return address_ids.astype(np.int64), area_ids_.astype(np.int64)


def network_versions(connection: Connection) -> dict[int, tuple]:
    """(version, updated_at) of every network by id: every write of a network changes both."""
    rows = connection.execute(select(NETWORKS.c.id, NETWORKS.c.version, NETWORKS.c.updated_at))
    return {int(r[0]): (r[1], r[2]) for r in rows}


def networks(connection: Connection, network_ids: Sequence[int]) -> list:
    """Public facts and area (``wkb``) of the given networks, ordered by id."""
    if not len(network_ids):
        return []
    query = (
        select(*NETWORK_FACTS, func.ST_AsBinary(NETWORKS.c.geom).label("wkb"))
        .where(NETWORKS.c.id.in_([int(i) for i in network_ids]))
        .order_by(NETWORKS.c.id)
    )
    return connection.execute(query).all()


def members_fingerprint(connection: Connection) -> str:
    """Changes whenever a member is added, removed or moved."""
    row = connection.execute(
        select(func.count(), func.max(MEMBERS.c.id), func.max(MEMBERS.c.updated_at))
    ).one()
    return f"{row[0]}:{row[1]}:{row[2]}"


def member_addresses(connection: Connection) -> tuple[np.ndarray, np.ndarray]:
    """(network id, address id) of every member: ids only, for counts."""
    network_ids, address_ids = copy_out_arrays(
        connection,
        [MEMBERS.c.network_id, MEMBERS.c.address_id],
        MEMBERS.c.id.op(">>")(16),
        [">i4", ">i8"],
    )
    return network_ids.astype(np.int64), address_ids


_STAMP = versions_of(AREAS.name, ADDRESSES.name, STATE.name, NETWORKS.name, MEMBERS.name)
