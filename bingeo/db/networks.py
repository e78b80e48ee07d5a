"""Repository of networks (BIN / BIN-Z) and their areas."""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import shapely
from geoalchemy2 import Geometry
from sqlalchemy import (
    Column,
    Connection,
    Text,
    any_,
    cast,
    delete,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, insert

from bingeo.db.bulk import copy_frame, staging_table, upsert_counts
from bingeo.db.models import (
    SRID,
    AddressNetwork,
    AreaLevel,
    Network,
    NetworkVersion,
    PoliceZoneMunicipality,
    ReferenceArea,
)
from bingeo.networks import MIN_SHARED_M2

PAIRS = AddressNetwork.__table__
# Where a network lies (municipalities, police zones) is never stored from a file or a request:
# ``refresh_places`` derives it from the area.
NETWORK_FIELDS = ("code", "name", "kind", "status", "how_to_join")


def upsert_networks(
    connection: Connection,
    frame: gpd.GeoDataFrame,
    *,
    changed_by: str | None = None,
    reason: str | None = None,
) -> tuple[int, int]:
    """Insert or update networks keyed on their code; a changed network gets a new version.

    The area a change replaces is kept in the network's history (who, why), as for any edit.
    """
    staging = staging_table(
        "staging_networks",
        [*(Column(name, Text) for name in NETWORK_FIELDS), Column("geom", Geometry(srid=SRID))],
    )
    staging.create(connection)
    # A frame without a column (a street list has no "how to join") stores NULLs for it.
    rows = frame.reindex(columns=list(NETWORK_FIELDS))
    rows["geom"] = shapely.to_wkb(
        shapely.set_srid(frame.geometry.values, SRID), hex=True, include_srid=True
    )
    copy_frame(connection, staging, rows)

    table = Network.__table__
    previous = (
        select(
            table.c.id,
            table.c.version,
            table.c.geom,
            literal(changed_by).label("changed_by"),
            literal(reason).label("reason"),
        )
        .join(staging, staging.c.code == table.c.code)
        .where(table.c.geom.is_distinct_from(func.ST_Multi(staging.c.geom)))
    )
    connection.execute(
        insert(NetworkVersion.__table__).from_select(
            ["network_id", "version", "geom", "changed_by", "reason"], previous
        )
    )
    source = select(
        staging.c.code,
        staging.c.name,
        cast(staging.c.kind, table.c.kind.type),
        cast(staging.c.status, table.c.status.type),
        staging.c.how_to_join,
        func.ST_Multi(staging.c.geom),
    )
    statement = insert(table).from_select([*NETWORK_FIELDS, "geom"], source)
    changed = ["name", "kind", "status", "geom"]
    new = {name: statement.excluded[name] for name in changed}
    # A file without a "how to join" keeps the text set through the API.
    new["how_to_join"] = func.coalesce(statement.excluded.how_to_join, table.c.how_to_join)
    statement = statement.on_conflict_do_update(
        index_elements=["code"],
        set_=new | {"version": table.c.version + 1, "updated_at": func.now()},
        where=tuple_(*(table.c[n] for n in new)).is_distinct_from(tuple_(*new.values())),
    )
    return upsert_counts(connection, statement)


def count_by_kind_status(connection: Connection) -> dict[str, dict[str, int]]:
    """Number of networks per kind and lifecycle status."""
    table = Network.__table__
    rows = connection.execute(
        select(table.c.kind, table.c.status, func.count()).group_by(table.c.kind, table.c.status)
    )
    result: dict[str, dict[str, int]] = {}
    for kind, status, count in rows:
        result.setdefault(kind.value, {})[status.value] = int(count)
    return result


NETWORKS = Network.__table__
PUBLIC_COLUMNS = (
    NETWORKS.c.id,
    NETWORKS.c.code,
    NETWORKS.c.name,
    NETWORKS.c.kind,
    NETWORKS.c.status,
    NETWORKS.c.nis_code,
    NETWORKS.c.police_zone_code,
    NETWORKS.c.nis_codes,
    NETWORKS.c.police_zone_codes,
    NETWORKS.c.how_to_join,
    NETWORKS.c.version,
    NETWORKS.c.created_at,
    NETWORKS.c.updated_at,
)


def _with_geometry():
    return select(*PUBLIC_COLUMNS, func.ST_AsBinary(NETWORKS.c.geom).label("wkb"))


def get_network(connection: Connection, network_id: int):
    """One network row (with ``wkb`` of its area) or None."""
    return connection.execute(_with_geometry().where(NETWORKS.c.id == network_id)).first()


def list_networks(
    connection: Connection,
    *,
    kind: str | None = None,
    status: str | None = None,
    nis_code: str | None = None,
    police_zone_code: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list, int]:
    """A page of networks matching the filters (``bbox`` in EPSG:31370) and the total."""
    conditions = []
    if kind:
        conditions.append(NETWORKS.c.kind == kind)
    if status:
        conditions.append(NETWORKS.c.status == status)
    # A network crossing a border is listed on both sides.
    if nis_code:
        conditions.append(NETWORKS.c.nis_codes.contains([nis_code]))
    if police_zone_code:
        conditions.append(NETWORKS.c.police_zone_codes.contains([police_zone_code]))
    if bbox:
        envelope = func.ST_MakeEnvelope(*bbox, SRID)
        conditions.append(NETWORKS.c.geom.intersects(envelope))
    total = connection.execute(
        select(func.count()).select_from(NETWORKS).where(*conditions)
    ).scalar_one()
    rows = connection.execute(
        _with_geometry().where(*conditions).order_by(NETWORKS.c.id).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def insert_network(connection: Connection, values: dict) -> int:
    """Insert a network (``geom`` as a WKB element), derive its places, and return its id."""
    network_id = connection.execute(
        insert(NETWORKS).values(**values).returning(NETWORKS.c.id)
    ).scalar_one()
    refresh_places(connection, [network_id])
    return network_id


def update_network(connection: Connection, network_id: int, version: int, values: dict) -> bool:
    """Apply ``values`` if the stored version is ``version``; the version then increases."""
    result = connection.execute(
        update(NETWORKS)
        .where(NETWORKS.c.id == network_id, NETWORKS.c.version == version)
        .values(**values, version=NETWORKS.c.version + 1, updated_at=func.now())
    )
    if result.rowcount == 1 and "geom" in values:
        refresh_places(connection, [network_id])
    return result.rowcount == 1


def delete_network(connection: Connection, network_id: int, version: int) -> bool:
    """Delete the network (and its address matches) if the stored version is ``version``."""
    result = connection.execute(
        delete(NETWORKS).where(NETWORKS.c.id == network_id, NETWORKS.c.version == version)
    )
    if result.rowcount != 1:
        return False
    connection.execute(delete(PAIRS).where(PAIRS.c.network_id == network_id))
    return True


def places_of(connection: Connection, geom) -> tuple[list[str], list[str]]:
    """Where an area (a WKB element) lies: its municipalities and police zones, the main ones
    first, by the rule of ``refresh_places``."""
    nis_codes = connection.execute(select(_municipalities_of(geom))).scalar_one()
    zones = connection.execute(select(_zones_of(cast(nis_codes, ARRAY(Text))))).scalar_one()
    return list(nis_codes), list(zones)


def refresh_places(connection: Connection, network_ids: Sequence[int] | None = None) -> None:
    """Derive where networks lie from their areas (all networks, or ``network_ids``).

    ``nis_codes``: every municipality the area shares at least ``MIN_SHARED_M2`` with, the one
    holding most of it first; ``police_zone_codes``: the zones of those municipalities, in that
    order. ``nis_code`` / ``police_zone_code`` are the first of each. Run after every change of a
    network's area and of the municipalities or zone memberships.
    """
    chosen = [] if network_ids is None else [NETWORKS.c.id == any_(list(network_ids))]
    for column, value in (
        (NETWORKS.c.nis_codes, _municipalities_of(NETWORKS.c.geom)),
        (NETWORKS.c.police_zone_codes, _zones_of(NETWORKS.c.nis_codes)),
    ):
        connection.execute(
            update(NETWORKS)
            .where(*chosen, column.is_distinct_from(value))
            .values({column: value, NETWORKS.c.updated_at: NETWORKS.c.updated_at})
        )
    first_nis, first_zone = NETWORKS.c.nis_codes[1], NETWORKS.c.police_zone_codes[1]
    connection.execute(
        update(NETWORKS)
        .where(
            *chosen,
            tuple_(NETWORKS.c.nis_code, NETWORKS.c.police_zone_code).is_distinct_from(
                tuple_(first_nis, first_zone)
            ),
        )
        .values(nis_code=first_nis, police_zone_code=first_zone, updated_at=NETWORKS.c.updated_at)
    )


def _municipalities_of(geom):
    # The municipalities an area shares at least MIN_SHARED_M2 with, most shared first.
    areas = ReferenceArea.__table__.alias("area")
    shared = func.ST_Area(func.ST_Intersection(areas.c.geom, geom))
    found = (
        select(func.array_agg(aggregate_order_by(areas.c.code, shared.desc(), areas.c.code)))
        .where(
            areas.c.level == AreaLevel.municipality,
            areas.c.geom.intersects(geom),
            shared >= MIN_SHARED_M2,
        )
        .scalar_subquery()
    )
    return func.coalesce(found, _EMPTY)


def _zones_of(nis_codes):
    # The police zones of the municipalities ``nis_codes``, in the municipalities' order.
    members = PoliceZoneMunicipality.__table__
    rank = func.min(func.array_position(nis_codes, members.c.nis_code))
    ranked = (
        select(members.c.police_zone_code.label("code"), rank.label("rank"))
        .where(members.c.nis_code == any_(nis_codes))
        .group_by(members.c.police_zone_code)
        .correlate(NETWORKS)
        .subquery()
    )
    found = select(
        func.array_agg(aggregate_order_by(ranked.c.code, ranked.c.rank, ranked.c.code))
    ).scalar_subquery()
    return func.coalesce(found, _EMPTY)


_EMPTY = cast(literal([], ARRAY(Text)), ARRAY(Text))
