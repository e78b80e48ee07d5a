"""Bulk loading: ``COPY`` into a temporary staging table, then one upsert statement."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql
from sqlalchemy import Column, Connection, MetaData, Table, func, literal_column, not_, select
from sqlalchemy.dialects.postgresql import Insert


def staging_table(name: str, columns: Sequence[Column]) -> Table:
    """A temporary table, dropped at the end of the transaction that creates it."""
    return Table(
        name,
        MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def copy_frame(connection: Connection, table: Table, frame: pd.DataFrame) -> None:
    """``COPY`` the rows of ``frame`` (columns named as in ``table``) into ``table``.

    Missing values become NULL; geometry columns take hex EWKB text.
    """
    if frame.empty:
        return
    driver = connection.connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns),
    )
    payload = frame.to_csv(index=False, header=False, na_rep="", float_format="%.3f")
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(payload)


def copy_tables(connection: Connection, table: Table, tables: Iterable[pa.Table]) -> int:
    """Stream every Arrow table of ``tables`` into ``table`` with one ``COPY``; returns the rows.

    One ``COPY`` for all of them lets the server parse one chunk while the caller prepares the
    next; Arrow writes the CSV in C++ (strings quoted, nulls as empty fields, which PostgreSQL
    reads as NULL).
    """
    batches = iter(tables)
    first = next(batches, None)
    if first is None:
        return 0
    driver = connection.connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
        sql.Identifier(table.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in first.column_names),
    )
    options = pacsv.WriteOptions(include_header=False)
    rows = 0
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for batch in itertools.chain([first], batches):
            buffer = pa.BufferOutputStream()
            pacsv.write_csv(batch.select(first.column_names), buffer, write_options=options)
            copy.write(memoryview(buffer.getvalue()))
            rows += batch.num_rows
    return rows


def upsert_counts(connection: Connection, statement: Insert) -> tuple[int, int]:
    """Run an ``INSERT ... ON CONFLICT`` and return (inserted, updated) row counts."""
    # xmax is 0 for a freshly inserted row version and the updating transaction otherwise.
    upserted = statement.returning(literal_column("(xmax = 0)").label("inserted")).cte("upserted")
    inserted = func.count().filter(upserted.c.inserted)
    updated = func.count().filter(not_(upserted.c.inserted))
    row = connection.execute(select(inserted, updated)).one()
    return int(row[0]), int(row[1])
