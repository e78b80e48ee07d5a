"""Repository of addresses and street names."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.schema import AddConstraint, DropConstraint, UniqueConstraint
from sqlalchemy.sql import Executable

from bingeo.db.bulk import (
    copy_binary,
    copy_out_arrays,
    copy_out_table,
    ewkb_points,
    staging_table,
    upsert_counts,
)
from bingeo.db.models import SRID, Address, Street

TEXT_FIELDS = ("street", "house_number", "box", "postcode", "municipality", "nis_code")
# Memory for the sorts and hashes of one national import (the machine has gigabytes to spare).
WORK_MEM = "256MB"
MAINTENANCE_WORK_MEM = "1GB"
BULK_STREETS = 5_000  # from this many new street names on, their indexes are rebuilt
ADDRESSES = Address.__table__
# The one definition of an approximate position (``geom`` is every located address's position,
# the register's own or an approximate one): every reader that counts them apart uses it.
APPROXIMATE = ADDRESSES.c.position_method.is_not(None)
# The register's own position (NULL for an approximate one), which an import compares and writes.
SURVEYED_GEOM = case((ADDRESSES.c.position_method.is_(None), ADDRESSES.c.geom))


def store_addresses(
    connection: Connection,
    tables: Iterable[pa.Table],
    *,
    timings: dict[str, float] | None = None,
) -> dict[str, int]:
    """Upsert numbered address rows (``bingeo.addresses.numbered_rows``); returns the counts.

    Into an empty table the rows go straight in with one binary ``COPY`` and the indexes are
    built once afterwards; otherwise they are copied into staging and only new and changed
    records are written. Keys must be distinct (the caller numbers repeats).
    """
    clock = _Clock(timings)
    for name, value in (("work_mem", WORK_MEM), ("maintenance_work_mem", MAINTENANCE_WORK_MEM)):
        connection.execute(select(func.set_config(name, value, True)))
    table = Address.__table__
    empty = _is_empty(connection)
    if empty:
        # Only the first import locks out readers: from here on no row can come in unseen.
        connection.execute(text(f"LOCK TABLE {table.name} IN ACCESS EXCLUSIVE MODE"))
        empty = _is_empty(connection)
    clock.tick("merge: count")
    if empty:
        with _emptied(connection, clock), _indexes_rebuilt(connection, clock):
            inserted = copy_binary(connection, table.name, (_with_points(t) for t in tables))
            clock.tick("COPY into addresses")
        return {"stored": inserted, "updated": 0}
    staging = staging_table(
        "staging_addresses",
        [*_key_and_text_columns(), Column("x", Float), Column("y", Float)],
    )
    staging.create(connection)
    copy_binary(connection, staging, tables)
    clock.tick("COPY into staging")
    stored_rows = connection.execute(select(func.count()).select_from(table)).scalar_one()
    inserted, updated = _merge_changes(connection, staging, stored_rows, clock)
    return {"stored": inserted, "updated": updated}


def store_streets(
    connection: Connection, streets: pd.DataFrame, normalise: Callable[[str], str]
) -> int:
    """Add the (nis_code, name) pairs of ``streets`` not stored yet, normalised; returns how many.

    Only the streets of the import are looked at: the new ones get their normalised name in
    the same insert, so the trigram indexes are written once per new street.
    """
    if streets.empty:
        return 0
    table = Street.__table__
    staging = staging_table(
        "staging_streets",
        [Column("nis_code", Text), Column("name", Text), Column("name_norm", Text)],
    )
    staging.create(connection)
    pairs = pa.Table.from_pandas(streets[["nis_code", "name"]], preserve_index=False)
    copy_binary(connection, staging, [pairs])
    known = select(table.c.nis_code, table.c.name).join(
        staging, and_(table.c.nis_code == staging.c.nis_code, table.c.name == staging.c.name)
    )
    stored = pd.DataFrame(connection.execute(known).all(), columns=["nis_code", "name"])
    new = streets.merge(stored, how="left", on=["nis_code", "name"], indicator=True)
    new = new[new["_merge"] == "left_only"][["nis_code", "name"]]
    if new.empty:
        return 0
    new = new.assign(name_norm=[normalise(name) for name in new["name"]])
    connection.execute(delete(staging))
    copy_binary(connection, staging, [pa.Table.from_pandas(new, preserve_index=False)])
    rows = select(staging.c.nis_code, staging.c.name, staging.c.name_norm)
    statement = insert(table).from_select(["nis_code", "name", "name_norm"], rows)
    statement = statement.on_conflict_do_nothing()
    if len(new) < BULK_STREETS:
        return _rowcount(connection, statement)
    # Tens of thousands of names (a first national import): the trigram (GIN) indexes are
    # built once afterwards instead of being updated name by name.
    with _indexes_rebuilt(connection, _Clock(None), table.name, uniques=False):
        return _rowcount(connection, statement)


def count_addresses(connection: Connection) -> dict[str, int]:
    """Addresses stored with the register's position, with an approximate one, and with none."""
    table = Address.__table__
    row = connection.execute(
        select(
            func.count().filter(table.c.geom.is_not(None), ~APPROXIMATE),
            func.count().filter(APPROXIMATE),
            func.count().filter(table.c.geom.is_(None)),
        )
    ).one()
    return {"located": int(row[0]), "approximate": int(row[1]), "unlocated": int(row[2])}


def approximate_ids(connection: Connection) -> np.ndarray:
    """Ids (increasing) of the addresses with an approximate position."""
    (ids,) = copy_out_arrays(
        connection, [ADDRESSES.c.id], ADDRESSES.c.id.op(">>")(16), [">i8"], [APPROXIMATE]
    )
    return np.sort(ids)


def street_records(connection: Connection, streets: pd.DataFrame) -> pa.Table:
    """Every address of those (nis_code, name) ``streets`` ("" for no NIS code) that hold an
    address without a position of the register: id, street, postcode, nis_code, municipality,
    house_number, and x, y of the register's own position (null where it gives none), by one
    ``COPY``. Streets whose addresses all have the register's position are not read."""
    pairs = staging_table(
        "staging_placement_streets", [Column("nis_code", Text), Column("name", Text)]
    )
    pairs.create(connection)
    copy_binary(connection, pairs, [pa.Table.from_pandas(streets, preserve_index=False)])
    table = ADDRESSES
    same_street = and_(
        table.c.street == pairs.c.name, func.coalesce(table.c.nis_code, "") == pairs.c.nis_code
    )
    unplaced = select(table.c.id).where(same_street, or_(table.c.geom.is_(None), APPROXIMATE))
    connection.execute(delete(pairs).where(~unplaced.exists()))
    text_fields = ("street", "postcode", "nis_code", "municipality", "house_number")
    query = select(
        table.c.id,
        *(table.c[name] for name in text_fields),
        func.ST_X(SURVEYED_GEOM).label("x"),
        func.ST_Y(SURVEYED_GEOM).label("y"),
    ).join_from(table, pairs, same_street)
    types = {"id": pa.int64(), **dict.fromkeys(text_fields, pa.string())}
    return copy_out_table(connection, query, {**types, "x": pa.float64(), "y": pa.float64()})


def store_placements(connection: Connection, placements: pa.Table) -> int:
    """Write the approximate positions of addresses without a position of the register
    (columns id, x, y, position_method; x, y and method null: no position); returns how many
    changed. Addresses that have the register's position are left alone."""
    staging = staging_table(
        "staging_placements",
        [
            Column("id", BigInteger),
            Column("x", Float),
            Column("y", Float),
            Column("position_method", String(16)),
        ],
    )
    staging.create(connection)
    copy_binary(connection, staging, [placements])
    table = ADDRESSES
    statement = (
        update(table)
        .where(
            table.c.id == staging.c.id,
            or_(table.c.geom.is_(None), APPROXIMATE),
            tuple_(
                table.c.position_method, func.ST_X(table.c.geom), func.ST_Y(table.c.geom)
            ).is_distinct_from(tuple_(staging.c.position_method, staging.c.x, staging.c.y)),
        )
        .values(geom=_point(staging), position_method=staging.c.position_method)
    )
    return _rowcount(connection, statement)


def _merge_changes(
    connection: Connection, staging: Table, stored_rows: int, clock: _Clock
) -> tuple[int, int]:
    """Write the staged records that are new or differ from the stored ones: (inserted, updated).

    A join finds them first, so a re-import of an unchanged file writes (and locks) nothing.
    """
    table = Address.__table__
    changes = staging_table(
        "staging_address_changes",
        [
            Column("id", BigInteger),
            *_key_and_text_columns(),
            Column("x", Float),
            Column("y", Float),
        ],
    )
    changes.create(connection)
    staged = select(*(staging.c[n] for n in ("source_key", *TEXT_FIELDS, "x", "y")))
    staged = staged.subquery("staged")
    fields = [*TEXT_FIELDS, "x", "y"]
    # Against the register's own position: an approximate one is no change of the record.
    stored = [
        *(table.c[n] for n in TEXT_FIELDS),
        func.ST_X(SURVEYED_GEOM),
        func.ST_Y(SURVEYED_GEOM),
    ]
    differ = or_(
        table.c.id.is_(None),
        tuple_(*stored).is_distinct_from(tuple_(*(staged.c[n] for n in fields))),
    )
    found = (
        select(table.c.id, staged.c.source_key, *(staged.c[n] for n in fields))
        .select_from(staged.outerjoin(table, table.c.source_key == staged.c.source_key))
        .where(differ)
    )
    connection.execute(insert(changes).from_select(["id", "source_key", *fields], found))
    clock.tick("merge: find changes")
    updated = _rowcount(
        connection,
        update(table)
        .where(table.c.id == changes.c.id)
        .values(
            {
                **{n: changes.c[n] for n in TEXT_FIELDS},
                "geom": _point(changes),
                "position_method": None,
            }
        ),
    )
    clock.tick("merge: update changed")
    new_rows = select(changes.c.source_key, *(changes.c[n] for n in TEXT_FIELDS), _point(changes))
    new_rows = new_rows.where(changes.c.id.is_(None))
    columns = ["source_key", *TEXT_FIELDS, "geom"]
    new_count = connection.execute(select(func.count()).where(changes.c.id.is_(None))).scalar_one()
    if new_count > stored_rows:
        with _indexes_rebuilt(connection, clock):
            inserted = _rowcount(connection, insert(table).from_select(columns, new_rows))
            clock.tick("merge: insert new")
    else:
        statement = insert(table).from_select(columns, new_rows)
        statement = statement.on_conflict_do_update(
            index_elements=["source_key"],
            set_={
                **{name: statement.excluded[name] for name in [*TEXT_FIELDS, "geom"]},
                "position_method": None,
            },
        )
        inserted, late_updates = upsert_counts(connection, statement)
        updated += late_updates
        clock.tick("merge: insert new")
    return inserted, updated


class _emptied:  # noqa: N801 - used as a context manager, named like one
    """``TRUNCATE`` an empty table without its primary key and incoming foreign keys.

    The table then has new files in this transaction, which PostgreSQL fills without writing
    the rows to the WAL under ``wal_level = minimal`` (the embedded cluster's setting), and the
    primary key is built once on exit instead of row by row. Referencing rows point at rows
    of the table, so there are none: adding the foreign keys back checks nothing but still
    fails loudly if there were.
    """

    def __init__(self, connection: Connection, clock: _Clock, table: str = Address.__tablename__):
        self.connection = connection
        self.clock = clock
        self.table = table
        # The foreign keys first: the primary key they point at can only go after them.
        self.constraints = connection.execute(
            text(
                "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),"
                " format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,"
                " pg_get_constraintdef(oid))"
                " FROM pg_constraint WHERE (contype = 'f' AND confrelid = CAST(:table AS regclass))"
                " OR (contype = 'p' AND conrelid = CAST(:table AS regclass))"
                " ORDER BY contype = 'p', conrelid::regclass::text, conname"
            ),
            {"table": table},
        ).all()

    def __enter__(self) -> None:
        for drop, _ in self.constraints:
            self.connection.execute(text(drop))
        self.connection.execute(text(f"TRUNCATE {self.table}"))
        self.clock.tick("merge: truncate")

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is not None:
            return
        for _, add in reversed(self.constraints):
            self.connection.execute(text(add))
        self.clock.tick("merge: rebuild primary key, foreign keys")


class _indexes_rebuilt:  # noqa: N801 - used as a context manager, named like one
    """Drop the secondary indexes (and unique constraints) of a table; rebuild on exit.

    Building an index once over sorted data is several times faster than updating it row by row;
    DDL is transactional in PostgreSQL, so a failure leaves the indexes as they were.
    """

    def __init__(
        self,
        connection: Connection,
        clock: _Clock,
        table: str = Address.__tablename__,
        *,
        uniques: bool = True,
    ) -> None:
        self.connection = connection
        self.clock = clock
        reflected = Table(table, MetaData(), autoload_with=connection)
        self.indexes = [i for i in reflected.indexes if uniques or not i.unique]
        self.uniques = [
            c for c in reflected.constraints if uniques and isinstance(c, UniqueConstraint)
        ]

    def __enter__(self) -> None:
        for index in self.indexes:
            index.drop(self.connection)
        for constraint in self.uniques:
            self.connection.execute(DropConstraint(constraint))
        self.clock.tick("merge: drop indexes")

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is not None:
            return
        for constraint in self.uniques:
            self.connection.execute(AddConstraint(constraint))
            self.clock.tick(f"merge: rebuild {constraint.name}")
        for index in self.indexes:
            index.create(self.connection)
            self.clock.tick(f"merge: rebuild {index.name}")


class _Clock:
    """Adds the time since the last tick to a phase of ``timings`` (when given)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def tick(self, phase: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[phase] = self.timings.get(phase, 0.0) + now - self.last
        self.last = now


def _key_and_text_columns() -> list[Column]:
    """Staging columns typed (and collated) as in ``addresses``, so they compare with it."""
    table = Address.__table__
    return [Column(name, table.c[name].type) for name in ("source_key", *TEXT_FIELDS)]


def _is_empty(connection: Connection) -> bool:
    return not connection.execute(select(exists().select_from(Address.__table__))).scalar_one()


def _rowcount(connection: Connection, statement: Executable) -> int:
    """Rows written by ``statement`` (SQLAlchemy keeps the count only when asked to)."""
    return int(connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


def _with_points(rows: pa.Table) -> pa.Table:
    """Address rows with x and y replaced by an EWKB ``geom`` column."""
    x = rows["x"].to_numpy(zero_copy_only=False).astype(float)
    y = rows["y"].to_numpy(zero_copy_only=False).astype(float)
    return rows.drop_columns(["x", "y"]).append_column("geom", ewkb_points(x, y, SRID))


def _point(table: Table) -> object:
    return func.ST_SetSRID(func.ST_MakePoint(table.c.x, table.c.y), SRID)


def analyze(connection: Connection) -> None:
    """Refresh the planner's statistics of the addresses (after a bulk change)."""
    connection.execute(text("ANALYZE addresses"))
