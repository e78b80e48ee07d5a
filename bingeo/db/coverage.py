"""Repository of coverage facts: areas of a scope, the stored area of each address, networks.

``address_areas`` holds the reference area of every located address per level, so coverage is
a count over stored facts; it is written and read with binary ``COPY`` (millions of rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from psycopg import sql
from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from bingeo.db.matching import _HEADER, _TRAILER, _copy_out
from bingeo.db.models import (
    SRID,
    Address,
    AddressArea,
    AddressAreaState,
    AreaLevel,
    Network,
    NetworkStatus,
    PoliceZoneMunicipality,
    ReferenceArea,
)

AREAS = ReferenceArea.__table__
ADDRESSES = Address.__table__
ADDRESS_AREAS = AddressArea.__table__
STATE = AddressAreaState.__table__
NETWORKS = Network.__table__
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


def stored_fingerprint(connection: Connection, level: AreaLevel) -> str | None:
    """The fingerprint ``address_areas`` of ``level`` was computed for (None: never)."""
    return connection.execute(
        select(STATE.c.fingerprint).where(STATE.c.level == level)
    ).scalar_one_or_none()


def replace_address_areas(
    connection: Connection,
    level: AreaLevel,
    address_ids: np.ndarray,
    area_ids: np.ndarray,
    fingerprint_: str,
) -> None:
    """Store the area of each address of ``level`` (replacing the level) and its fingerprint."""
    connection.execute(delete(ADDRESS_AREAS).where(ADDRESS_AREAS.c.level == level))
    label = level.value.encode()
    row = np.dtype(
        [("n", ">i2"), ("l0", ">i4"), ("level", f"S{len(label)}"), ("l1", ">i4")]
        + [("address_id", ">i8"), ("l2", ">i4"), ("area_id", ">i4")]
    )
    order = np.argsort(address_ids, kind="stable")
    rows = np.empty(len(order), dtype=row)
    rows["n"], rows["l0"], rows["level"] = 3, len(label), label
    rows["l1"], rows["address_id"] = 8, address_ids[order]
    rows["l2"], rows["area_id"] = 4, area_ids[order]
    statement = sql.SQL("COPY {} (level, address_id, area_id) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(ADDRESS_AREAS.name)
    )
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(_HEADER)
        for start in range(0, len(rows), _CHUNK):
            copy.write(rows[start : start + _CHUNK].tobytes())
        copy.write(_TRAILER)
    statement = insert(STATE).values(level=level, fingerprint=fingerprint_)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[STATE.c.level],
            set_={"fingerprint": fingerprint_, "refreshed_at": func.now()},
        )
    )


def address_areas(
    connection: Connection, level: AreaLevel, area_ids: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(address ids, area ids) stored for ``level``, of all areas or of ``area_ids``."""
    where = [ADDRESS_AREAS.c.level == level]
    if area_ids is not None:
        if not len(area_ids):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        where.append(ADDRESS_AREAS.c.area_id.in_(list(area_ids)))
    address_ids, area_ids_ = _copy_out(
        connection,
        [ADDRESS_AREAS.c.address_id, ADDRESS_AREAS.c.area_id],
        ADDRESS_AREAS.c.address_id.op(">>")(16),
        [">i8", ">i4"],
        where,
    )
    return address_ids.astype(np.int64), area_ids_.astype(np.int64)


def counted_networks(
    connection: Connection,
    *,
    include_inactive: bool = False,
    nis_codes: Sequence[str] | None = None,
    zone_codes: Sequence[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> list:
    """Networks (public facts and ``wkb``) that count: active ones unless ``include_inactive``.

    With ``nis_codes`` / ``zone_codes``, only the networks of those municipalities or zones;
    with ``bbox`` (EPSG:31370), only those whose bounding box meets it.
    """
    query = select(
        NETWORKS.c.id,
        NETWORKS.c.code,
        NETWORKS.c.name,
        NETWORKS.c.kind,
        NETWORKS.c.status,
        NETWORKS.c.nis_code,
        NETWORKS.c.police_zone_code,
        func.ST_AsBinary(NETWORKS.c.geom).label("wkb"),
    ).order_by(NETWORKS.c.id)
    if not include_inactive:
        query = query.where(NETWORKS.c.status == NetworkStatus.active)
    if bbox is not None:
        query = query.where(NETWORKS.c.geom.op("&&")(func.ST_MakeEnvelope(*bbox, SRID)))
    if zone_codes is not None:
        query = query.where(NETWORKS.c.police_zone_code.in_(list(zone_codes)))
    elif nis_codes is not None:
        query = query.where(NETWORKS.c.nis_code.in_(list(nis_codes)))
    return connection.execute(query).all()


def matches_fingerprint(connection: Connection) -> str:
    """What the stored matches depend on: the networks (count, last change) and the address ids.

    Every write of a network changes ``updated_at`` and rematches it; deleting one changes the
    count; imports of addresses add ids.
    """
    networks = connection.execute(
        select(func.count(), func.max(NETWORKS.c.id), func.max(NETWORKS.c.updated_at))
    ).one()
    last_address = connection.execute(select(func.max(ADDRESSES.c.id))).scalar()
    return f"networks={networks[0]}:{networks[1]}:{networks[2]};addresses={last_address}"
