"""Bulk loading: ``COPY`` into a temporary staging table, then one upsert statement."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
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


def upsert_counts(connection: Connection, statement: Insert) -> tuple[int, int]:
    """Run an ``INSERT ... ON CONFLICT`` and return (inserted, updated) row counts."""
    # xmax is 0 for a freshly inserted row version and the updating transaction otherwise.
    upserted = statement.returning(literal_column("(xmax = 0)").label("inserted")).cte("upserted")
    inserted = func.count().filter(upserted.c.inserted)
    updated = func.count().filter(not_(upserted.c.inserted))
    row = connection.execute(select(inserted, updated)).one()
    return int(row[0]), int(row[1])
