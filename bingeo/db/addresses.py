"""Repository of addresses and street names."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.schema import AddConstraint, DropConstraint, UniqueConstraint
from sqlalchemy.sql import Executable

from bingeo.db.bulk import copy_frame, copy_tables, staging_table, upsert_counts
from bingeo.db.models import SRID, Address, Street

TEXT_FIELDS = ("street", "house_number", "box", "postcode", "municipality", "nis_code")
# Memory for the sorts and hashes of one national import (the machine has gigabytes to spare).
WORK_MEM = "256MB"
MAINTENANCE_WORK_MEM = "1GB"


def create_address_staging(connection: Connection) -> Table:
    """The temporary table that an address import copies its rows into."""
    staging = staging_table(
        "staging_addresses",
        [
            Column("row_no", BigInteger),
            Column("source_key", Text),
            Column("derived", Boolean),
            Column("key_hash", BigInteger),
            Column("occurrence", Integer),  # NULL means 1: set only for keys that repeat
            *(Column(name, Text) for name in TEXT_FIELDS),
            Column("x", Float),
            Column("y", Float),
        ],
    )
    staging.create(connection)
    return staging


def stage_addresses(connection: Connection, staging: Table, frame: pd.DataFrame) -> None:
    """Copy one parsed chunk (``bingeo.addresses`` columns plus row_no, derived) into staging."""
    copy_frame(connection, staging, frame[[c.name for c in staging.columns if c.name in frame]])


def stage_address_tables(connection: Connection, staging: Table, tables: Iterable[pa.Table]) -> int:
    """Copy parsed chunks (``AddressChunk.table``) into staging with one ``COPY``."""
    return copy_tables(connection, staging, tables)


def number_repeated_keys(connection: Connection, staging: Table, key_hashes: np.ndarray) -> None:
    """Number the rows of keys that repeat (1, 2, ... in file order).

    ``key_hashes`` are the hashes that occur more than once; only their rows are looked at, so
    a file without repeats costs nothing here.
    """
    if len(key_hashes) == 0:
        return
    hashes = bindparam("hashes", [int(h) for h in key_hashes], type_=ARRAY(BigInteger))
    numbered = (
        select(
            staging.c.row_no,
            func.row_number()
            .over(partition_by=staging.c.source_key, order_by=staging.c.row_no)
            .label("occurrence"),
        )
        # IN (SELECT unnest(...)) is a hashed lookup; = ANY(array) would scan the array per row.
        .where(staging.c.key_hash.in_(select(func.unnest(hashes))))
        .subquery("numbered")
    )
    connection.execute(
        update(staging)
        .where(and_(staging.c.row_no == numbered.c.row_no, numbered.c.occurrence > 1))
        .values(occurrence=numbered.c.occurrence)
    )


def merge_staged_addresses(
    connection: Connection, staging: Table, *, timings: dict[str, float] | None = None
) -> dict[str, int]:
    """Upsert the staged addresses and their street names; returns the counts.

    A derived key that occurs more than once (identical records) gets an occurrence suffix so
    every record is kept; a repeated source id keeps its first row and counts as duplicate.
    Only new and changed records are written. Into an empty table (or when the new records
    outnumber the stored ones) the rows go in without index upkeep and the secondary indexes are
    rebuilt afterwards, in the same transaction.
    """
    clock = _Clock(timings)
    for name, value in (("work_mem", WORK_MEM), ("maintenance_work_mem", MAINTENANCE_WORK_MEM)):
        connection.execute(select(func.set_config(name, value, True)))
    table = Address.__table__
    occurrence = func.coalesce(staging.c.occurrence, 1)
    duplicates = connection.execute(
        select(func.count()).where(and_(occurrence > 1, staging.c.derived.is_(False)))
    ).scalar_one()
    key = case(
        (occurrence == 1, staging.c.source_key),
        else_=staging.c.source_key + "#" + cast(occurrence, Text),
    ).label("source_key")
    wanted = or_(occurrence == 1, staging.c.derived)
    stored_rows = connection.execute(select(func.count()).select_from(table)).scalar_one()
    clock.tick("merge: count")
    columns = ["source_key", *TEXT_FIELDS, "geom"]
    if stored_rows == 0:
        rows = select(key, *(staging.c[n] for n in TEXT_FIELDS), _point(staging)).where(wanted)
        with _indexes_rebuilt(connection, clock):
            inserted = _rowcount(connection, insert(table).from_select(columns, rows))
            clock.tick("merge: insert")
        updated = 0
    else:
        inserted, updated = _merge_changes(connection, staging, key, wanted, stored_rows, clock)
    streets = select(func.coalesce(staging.c.nis_code, literal("")), staging.c.street).distinct()
    connection.execute(
        insert(Street.__table__).from_select(["nis_code", "name"], streets).on_conflict_do_nothing()
    )
    clock.tick("merge: street names")
    return {"stored": int(inserted), "updated": int(updated), "duplicates": int(duplicates)}


def count_addresses(connection: Connection) -> dict[str, int]:
    """Located and unlocated addresses stored."""
    table = Address.__table__
    row = connection.execute(
        select(
            func.count().filter(table.c.geom.is_not(None)),
            func.count().filter(table.c.geom.is_(None)),
        )
    ).one()
    return {"located": int(row[0]), "unlocated": int(row[1])}


def _merge_changes(
    connection: Connection,
    staging: Table,
    key: object,
    wanted: object,
    stored_rows: int,
    clock: _Clock,
) -> tuple[int, int]:
    """Write the staged records that are new or differ from the stored ones: (inserted, updated).

    A join finds them first, so a re-import of an unchanged file writes (and locks) nothing.
    """
    table = Address.__table__
    changes = staging_table(
        "staging_address_changes",
        [
            Column("id", BigInteger),
            Column("source_key", Text),
            *(Column(name, Text) for name in TEXT_FIELDS),
            Column("x", Float),
            Column("y", Float),
        ],
    )
    changes.create(connection)
    staged = select(key, *(staging.c[n] for n in (*TEXT_FIELDS, "x", "y"))).where(wanted)
    staged = staged.subquery("staged")
    fields = [*TEXT_FIELDS, "x", "y"]
    stored = [*(table.c[n] for n in TEXT_FIELDS), func.ST_X(table.c.geom), func.ST_Y(table.c.geom)]
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
        .values({**{n: changes.c[n] for n in TEXT_FIELDS}, "geom": _point(changes)}),
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
            set_={name: statement.excluded[name] for name in [*TEXT_FIELDS, "geom"]},
        )
        inserted, late_updates = upsert_counts(connection, statement)
        updated += late_updates
        clock.tick("merge: insert new")
    return inserted, updated


class _indexes_rebuilt:  # noqa: N801 - used as a context manager, named like one
    """Drop the secondary indexes and unique constraints of ``addresses``; rebuild on exit.

    Building an index once over sorted data is several times faster than updating it row by row;
    DDL is transactional in PostgreSQL, so a failure leaves the indexes as they were.
    """

    def __init__(self, connection: Connection, clock: _Clock) -> None:
        self.connection = connection
        self.clock = clock
        reflected = Table(Address.__tablename__, MetaData(), autoload_with=connection)
        self.indexes = list(reflected.indexes)
        self.uniques = [c for c in reflected.constraints if isinstance(c, UniqueConstraint)]

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


def _rowcount(connection: Connection, statement: Executable) -> int:
    """Rows written by ``statement`` (SQLAlchemy keeps the count only when asked to)."""
    return int(connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


def _point(table: Table) -> object:
    return func.ST_SetSRID(func.ST_MakePoint(table.c.x, table.c.y), SRID)
