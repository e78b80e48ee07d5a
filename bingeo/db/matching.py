"""Repository of address-to-network matches: fast loading of coordinates, binary ``COPY`` of pairs.

Five million points do not fit through the ORM: coordinates leave PostGIS as a binary ``COPY`` of
(id, x, y) parsed straight into numpy arrays, and pairs enter it the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from psycopg import sql
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    Table,
    and_,
    cast,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from bingeo.db.addresses import APPROXIMATE
from bingeo.db.bulk import BINARY_HEADER, BINARY_TRAILER, copy_out_arrays, staging_table
from bingeo.db.models import SRID, Address, AddressNetwork, AreaLevel, Network, ReferenceArea
from bingeo.matching import AddressPoints, Pairs

ADDRESSES = Address.__table__
NETWORKS = Network.__table__
PAIRS = AddressNetwork.__table__
NETWORK_FACTS = (
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
)

_PAIR_ROW = np.dtype(
    [("n", ">i2"), ("l0", ">i4"), ("network_id", ">i4"), ("l1", ">i4"), ("address_id", ">i8")]
)
_CHUNK_BYTES = 16 * 1024 * 1024
# Above this many pairs a full rewrite rebuilds the indexes and foreign keys once instead of
# checking them row by row (a foreign-key check locks the referenced address row).
BULK_REWRITE_MIN = 100_000


def load_points(
    connection: Connection, *, boxes: Sequence[tuple[float, float, float, float]] | None = None
) -> AddressPoints:
    """Located addresses (all, or those in any of ``boxes``, EPSG:31370) as the read model,
    approximate positions included and flagged."""
    where = [ADDRESSES.c.geom.is_not(None)]
    source = ADDRESSES
    if boxes is not None:
        if not boxes:
            return AddressPoints.from_arrays(np.empty(0), np.empty(0), np.empty(0))
        # The boxes as rows joined to the GiST index: one index scan per box, where an ``OR`` of
        # a few dozen boxes costs milliseconds of planning and a bitmap per box.
        corners = [
            cast(postgresql.array(list(corner)), postgresql.ARRAY(Float))
            for corner in zip(*boxes, strict=True)
        ]
        grid = func.unnest(*corners).table_valued("minx", "miny", "maxx", "maxy").render_derived()
        envelope = func.ST_MakeEnvelope(grid.c.minx, grid.c.miny, grid.c.maxx, grid.c.maxy, SRID)
        source = grid.join(ADDRESSES, ADDRESSES.c.geom.op("&&")(envelope))
    geom = ADDRESSES.c.geom
    # The planner guesses hundreds of rows per box, and past a cost threshold it compiles the
    # query (JIT): 40 ms for a join that reads a few hundred rows. Off for this query only.
    jit = _set_local(connection, "jit", "off") if boxes is not None else None
    ids, x, y, approximate = copy_out_arrays(
        connection,
        [ADDRESSES.c.id, func.ST_X(geom), func.ST_Y(geom), APPROXIMATE],
        ADDRESSES.c.id.op(">>")(16),
        [">i8", ">f8", ">f8", "?"],
        where,
        source=source,
    )
    if jit is not None:
        _set_local(connection, "jit", jit)
    if boxes is not None and len(boxes) > 1:
        # A point in the overlap of two boxes came once per box.
        ids, first = np.unique(ids, return_index=True)
        x, y, approximate = x[first], y[first], approximate[first]
    return AddressPoints.from_arrays(ids, x, y, approximate)


def load_polygons(
    connection: Connection, network_ids: Sequence[int] | None = None
) -> list[tuple[int, shapely.Geometry]]:
    """(network id, area) of all networks or of ``network_ids``, ordered by id."""
    query = select(NETWORKS.c.id, func.ST_AsBinary(NETWORKS.c.geom)).order_by(NETWORKS.c.id)
    if network_ids is not None:
        query = query.where(NETWORKS.c.id.in_(list(network_ids)))
    rows = connection.execute(query).all()
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
    return [(int(r[0]), g) for r, g in zip(rows, geoms, strict=True)]


def stored_pairs(connection: Connection, network_ids: Sequence[int] | None = None) -> Pairs:
    """The stored pairs (all, or of ``network_ids``), sorted by network then address."""
    where = [] if network_ids is None else [PAIRS.c.network_id.in_(list(network_ids))]
    network_ids_, address_ids = copy_out_arrays(
        connection,
        [PAIRS.c.network_id, PAIRS.c.address_id],
        PAIRS.c.address_id.op(">>")(16),
        [">i4", ">i8"],
        where,
    )
    order = np.lexsort((address_ids, network_ids_))
    return Pairs(network_ids_[order], address_ids[order])


def add_pairs(connection: Connection, pairs: Pairs) -> None:
    """Insert ``pairs`` (none of them stored yet) with a binary ``COPY``."""
    _copy_pairs_in(connection, PAIRS.name, pairs)


def remove_pairs(connection: Connection, pairs: Pairs) -> None:
    """Delete ``pairs`` through a staging table (one statement, whatever their number)."""
    if not len(pairs):
        return
    staging = staging_table(
        "staging_pairs_removed",
        [Column("network_id", Integer), Column("address_id", BigInteger)],
    )
    staging.create(connection)
    _copy_pairs_in(connection, staging.name, pairs)
    connection.execute(
        delete(PAIRS).where(
            and_(
                PAIRS.c.network_id == staging.c.network_id,
                PAIRS.c.address_id == staging.c.address_id,
            )
        )
    )
    staging.drop(connection)


def replace_all_pairs(connection: Connection, pairs: Pairs) -> None:
    """Replace the whole table with ``pairs``; large loads rebuild indexes and keys once.

    The table is locked (ACCESS EXCLUSIVE) until the transaction ends: readers wait for it.
    """
    if len(pairs) < BULK_REWRITE_MIN:
        connection.execute(delete(PAIRS))
        add_pairs(connection, pairs)
        return
    # Reflected, so the constraints are dropped and re-made under the names the schema has.
    table = Table(PAIRS.name, MetaData(), autoload_with=connection)
    foreign_keys = list(table.foreign_key_constraints)
    indexes = list(table.indexes)
    for constraint in foreign_keys:
        connection.execute(DropConstraint(constraint))
    for index in indexes:
        connection.execute(DropIndex(index))
    connection.execute(DropConstraint(table.primary_key))
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(PAIRS.name)))
    add_pairs(connection, pairs)
    connection.execute(AddConstraint(table.primary_key))
    for index in indexes:
        connection.execute(CreateIndex(index))
    for constraint in foreign_keys:
        connection.execute(AddConstraint(constraint))


def lock_for_full_rematch(connection: Connection) -> None:
    """Hold off writes to networks and addresses (not reads) until the transaction ends.

    A full rematch computes from one state of both tables; an edit committed in between would
    otherwise be overwritten by pairs of the old area.
    """
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(
            sql.SQL("LOCK TABLE {}, {} IN SHARE MODE").format(
                sql.Identifier(NETWORKS.name), sql.Identifier(ADDRESSES.name)
            )
        )


def networks_changed_in_transaction(connection: Connection) -> list[int]:
    """Networks inserted or updated by the current transaction.

    ``now()`` is the start time of the transaction, and an insert or an upsert sets
    ``updated_at`` to it, so this finds exactly what the transaction's import changed.
    """
    rows = connection.execute(
        select(NETWORKS.c.id).where(NETWORKS.c.updated_at == func.now()).order_by(NETWORKS.c.id)
    )
    return [int(r[0]) for r in rows]


def networks_near(connection: Connection, x: float, y: float) -> list:
    """Networks whose bounding box holds the point, with their area as ``wkb``."""
    point = func.ST_SetSRID(func.ST_MakePoint(x, y), SRID)
    query = (
        select(*NETWORK_FACTS, func.ST_AsBinary(NETWORKS.c.geom).label("wkb"))
        .where(NETWORKS.c.geom.op("&&")(point))
        .order_by(NETWORKS.c.id)
    )
    return connection.execute(query).all()


def network_facts(connection: Connection, network_ids: Sequence[int]) -> list:
    """Public facts of the given networks, ordered by id."""
    query = (
        select(*NETWORK_FACTS).where(NETWORKS.c.id.in_(list(network_ids))).order_by(NETWORKS.c.id)
    )
    return connection.execute(query).all()


def place_names(
    connection: Connection, level: AreaLevel, codes: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    """(Dutch name, French name) of the reference areas of ``level`` with the given codes."""
    if not codes:
        return {}
    areas = ReferenceArea.__table__
    rows = connection.execute(
        select(areas.c.code, areas.c.name_nl, areas.c.name_fr).where(
            areas.c.level == level, areas.c.code.in_(list(codes))
        )
    )
    return {r.code: (r.name_nl, r.name_fr) for r in rows}


def address_position(connection: Connection, address_id: int):
    """(id, x, y, position_method) of an address (x, y None when it has no position;
    position_method None unless it is approximate), or None if unknown."""
    query = select(
        ADDRESSES.c.id,
        func.ST_X(ADDRESSES.c.geom),
        func.ST_Y(ADDRESSES.c.geom),
        ADDRESSES.c.position_method,
    ).where(ADDRESSES.c.id == address_id)
    return connection.execute(query).first()


def network_ids_of_addresses(
    connection: Connection, address_ids: Sequence[int]
) -> list[tuple[int, int]]:
    """The stored (address id, network id) pairs of the addresses, by address then network."""
    rows = connection.execute(
        select(PAIRS.c.address_id, PAIRS.c.network_id)
        .where(PAIRS.c.address_id.in_([int(i) for i in address_ids]))
        .order_by(PAIRS.c.address_id, PAIRS.c.network_id)
    )
    return [(int(r[0]), int(r[1])) for r in rows]


def count_pairs(connection: Connection) -> int:
    """Number of stored pairs."""
    return int(connection.execute(select(func.count()).select_from(PAIRS)).scalar_one())


# private helpers --------------------------------------------------------------------------------


def _set_local(connection: Connection, name: str, value: str) -> str:
    """Set a setting until the end of the transaction; its value before."""
    before = connection.execute(select(func.current_setting(name))).scalar_one()
    connection.execute(select(func.set_config(name, value, True)))
    return before


def _copy_pairs_in(connection: Connection, table_name: str, pairs: Pairs) -> None:
    if not len(pairs):
        return
    rows = np.empty(len(pairs), dtype=_PAIR_ROW)
    rows["n"] = 2
    rows["l0"] = 4
    rows["network_id"] = pairs.network_ids
    rows["l1"] = 8
    rows["address_id"] = pairs.address_ids
    statement = sql.SQL("COPY {} (network_id, address_id) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(table_name)
    )
    driver = connection.connection.driver_connection
    step = _CHUNK_BYTES // _PAIR_ROW.itemsize
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(BINARY_HEADER)
        for start in range(0, len(rows), step):
            copy.write(rows[start : start + step].tobytes())
        copy.write(BINARY_TRAILER)
