"""Repository of addresses and street names."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert

from bingeo.db.bulk import copy_frame, staging_table, upsert_counts
from bingeo.db.models import SRID, Address, Street

TEXT_FIELDS = ("street", "house_number", "box", "postcode", "municipality", "nis_code")


def create_address_staging(connection: Connection) -> Table:
    """The temporary table that an address import copies its rows into."""
    staging = staging_table(
        "staging_addresses",
        [
            Column("row_no", BigInteger),
            Column("source_key", Text),
            Column("derived", Boolean),
            *(Column(name, Text) for name in TEXT_FIELDS),
            Column("x", Float),
            Column("y", Float),
        ],
    )
    staging.create(connection)
    return staging


def stage_addresses(connection: Connection, staging: Table, frame: pd.DataFrame) -> None:
    """Copy one parsed chunk (``bingeo.addresses`` columns plus row_no, derived) into staging."""
    copy_frame(connection, staging, frame[[c.name for c in staging.columns]])


def merge_staged_addresses(connection: Connection, staging: Table) -> dict[str, int]:
    """Upsert the staged addresses and their street names; returns the counts.

    A derived key that occurs more than once (identical records) gets an occurrence suffix so
    every record is kept; a repeated source id keeps its first row and counts as duplicate.
    """
    occurrence = func.row_number().over(
        partition_by=staging.c.source_key, order_by=staging.c.row_no
    )
    numbered = select(staging, occurrence.label("occurrence")).subquery("numbered")
    key = case(
        (numbered.c.occurrence == 1, numbered.c.source_key),
        else_=numbered.c.source_key + "#" + cast(numbered.c.occurrence, Text),
    )
    geom = func.ST_SetSRID(func.ST_MakePoint(numbered.c.x, numbered.c.y), SRID)
    source = select(key, *(numbered.c[n] for n in TEXT_FIELDS), geom).where(
        or_(numbered.c.occurrence == 1, numbered.c.derived)
    )
    table = Address.__table__
    columns = ["source_key", *TEXT_FIELDS, "geom"]
    statement = insert(table).from_select(columns, source)
    changed = [*TEXT_FIELDS, "geom"]
    statement = statement.on_conflict_do_update(
        index_elements=["source_key"],
        set_={name: statement.excluded[name] for name in changed},
        where=tuple_(*(table.c[n] for n in changed)).is_distinct_from(
            tuple_(*(statement.excluded[n] for n in changed))
        ),
    )
    inserted, updated = upsert_counts(connection, statement)
    duplicates = connection.execute(
        select(func.count())
        .select_from(numbered)
        .where(and_(numbered.c.occurrence > 1, numbered.c.derived.is_(False)))
    ).scalar_one()
    streets = select(func.coalesce(staging.c.nis_code, literal("")), staging.c.street).distinct()
    connection.execute(
        insert(Street.__table__).from_select(["nis_code", "name"], streets).on_conflict_do_nothing()
    )
    return {"stored": inserted, "updated": updated, "duplicates": int(duplicates)}


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
