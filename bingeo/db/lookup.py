"""Queries of the address lookup: normalised street names, postcodes, candidates."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Text,
    and_,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert

from bingeo.db.bulk import copy_binary, copy_frame, staging_table
from bingeo.db.models import Address, AreaLevel, Postcode, ReferenceArea, Street

WGS84 = 4326
DEFAULT_THRESHOLD = 0.3  # pg_trgm's default similarity threshold of ``%``
EXHAUSTIVE_THRESHOLD = 0.15
TYPO_CHARS = 3


@dataclass(frozen=True)
class StreetCandidate:
    """A street of a municipality whose normalised name resembles the query."""

    nis_code: str  # "" when the register gives none
    name: str
    name_norm: str
    similarity: float  # pg_trgm similarity of the normalised names


@dataclass(frozen=True)
class AddressRow:
    """An address with its position in EPSG:4326 (None when unlocated) and, for an approximate
    position, how it was found."""

    id: int
    street: str
    house_number: str | None
    box: str | None
    postcode: str | None
    municipality: str | None
    nis_code: str | None
    lon: float | None
    lat: float | None
    position_method: str | None  # None: the register's own position (or none)


def normalise_new_streets(connection: Connection, normalise: Callable[[str], str]) -> int:
    """Fill ``streets.name_norm`` where it is NULL; returns the number of streets done."""
    table = Street.__table__
    rows = connection.execute(select(table.c.id, table.c.name).where(table.c.name_norm.is_(None)))
    frame = pd.DataFrame(rows.all(), columns=["id", "name"])
    if frame.empty:
        return 0
    frame["name_norm"] = [normalise(name) for name in frame["name"]]
    staging = staging_table(
        "staging_street_norms", [Column("id", BigInteger), Column("name_norm", Text)]
    )
    staging.create(connection)
    copy_frame(connection, staging, frame[["id", "name_norm"]])
    connection.execute(
        update(table).where(table.c.id == staging.c.id).values(name_norm=staging.c.name_norm)
    )
    staging.drop(connection)
    return len(frame)


def refresh_postcodes(connection: Connection, places: pa.Table | None = None) -> int:
    """Add the (postcode, NIS code, municipality) triples the addresses use; returns the count.

    ``places`` (optional, from ``bingeo.addresses.postcode_places``): the triples of the rows
    an import just wrote, the only ones that can be new; a stored name is then replaced only by
    one that sorts first. Without it every address is read (and each name set to the first).
    """
    postcodes = Postcode.__table__
    if places is None:
        table = Address.__table__
        nis = func.coalesce(table.c.nis_code, "")
        source = (
            select(table.c.postcode, nis, func.min(table.c.municipality))
            .where(table.c.postcode.is_not(None))
            .group_by(table.c.postcode, nis)
        )
    else:
        staging = staging_table(
            "staging_postcodes",
            [Column("postcode", Text), Column("nis_code", Text), Column("municipality", Text)],
        )
        staging.create(connection)
        copy_binary(connection, staging, [places])
        source = select(staging.c.postcode, staging.c.nis_code, staging.c.municipality)
    statement = insert(postcodes).from_select(["postcode", "nis_code", "municipality"], source)
    name = statement.excluded.municipality
    if places is not None:
        name = func.least(postcodes.c.municipality, name)
    statement = statement.on_conflict_do_update(
        index_elements=["postcode", "nis_code"],
        set_={"municipality": name},
        where=postcodes.c.municipality.is_distinct_from(name),
    )
    connection.execute(statement)
    return connection.execute(select(func.count()).select_from(postcodes)).scalar_one()


def places(connection: Connection) -> list[tuple[str | None, str, str | None]]:
    """Every (postcode, NIS code, name) a query may name: postcodes and municipality areas."""
    postcodes = connection.execute(
        select(Postcode.postcode, Postcode.nis_code, Postcode.municipality)
    ).all()
    areas = ReferenceArea.__table__
    names = connection.execute(
        select(areas.c.nis_code, areas.c.name_nl, areas.c.name_fr).where(
            areas.c.level == AreaLevel.municipality, areas.c.nis_code.is_not(None)
        )
    ).all()
    out: list[tuple[str | None, str, str | None]] = [tuple(r) for r in postcodes]
    for nis_code, name_nl, name_fr in names:
        out += [(None, nis_code, name) for name in {name_nl, name_fr} if name]
    return out


def streets_named(
    connection: Connection, street_norm: str, *, nis_codes: Sequence[str] | None = None
) -> list[StreetCandidate]:
    """Streets whose normalised name is exactly ``street_norm`` (the common, cheap case)."""
    table = Street.__table__
    query = select(table.c.nis_code, table.c.name, table.c.name_norm, literal(1.0)).where(
        table.c.name_norm == street_norm
    )
    if nis_codes is not None:
        query = query.where(table.c.nis_code.in_(list(nis_codes)))
    rows = connection.execute(query.order_by(table.c.nis_code, table.c.name))
    return [StreetCandidate(*row) for row in rows]


def candidate_streets(
    connection: Connection,
    street_norm: str,
    *,
    nis_codes: Sequence[str] | None = None,
    limit: int = 10,
    exhaustive: bool = False,
) -> list[StreetCandidate]:
    """Streets whose normalised name is most similar to ``street_norm`` (pg_trgm).

    The trigram index preselects names sharing enough trigrams (``%``). ``exhaustive`` is for
    short names with a typo, which share few trigrams: within known municipalities every street
    is then ranked (a few thousand at most), nationally the index threshold is lowered.
    """
    table = Street.__table__
    similarity = func.similarity(table.c.name_norm, street_norm)
    query = select(table.c.nis_code, table.c.name, table.c.name_norm, similarity)
    if nis_codes is not None:
        query = query.where(table.c.nis_code.in_(list(nis_codes)))
    if nis_codes is None or not exhaustive:
        query = query.where(table.c.name_norm.op("%")(street_norm))
    else:
        # One letter typed wrong, missing or extra keeps the length within a few characters;
        # comparing lengths is far cheaper than computing trigrams.
        length = func.length(table.c.name_norm)
        query = query.where(
            length.between(len(street_norm) - TYPO_CHARS, len(street_norm) + TYPO_CHARS)
        )
    query = query.order_by(similarity.desc(), table.c.name).limit(limit)
    if exhaustive and nis_codes is None:
        _set_threshold(connection, EXHAUSTIVE_THRESHOLD)
        try:
            return [StreetCandidate(*row) for row in connection.execute(query)]
        finally:
            _set_threshold(connection, DEFAULT_THRESHOLD)
    return [StreetCandidate(*row) for row in connection.execute(query)]


def addresses_on_streets(
    connection: Connection,
    streets: Sequence[tuple[str, str]],
    *,
    house_number: str | None,
    limit: int = 200,
) -> list[AddressRow]:
    """Addresses of the (NIS code, street) pairs with that normalised house number.

    Without a house number: the addresses of each street with the lowest numbers.
    """
    if not streets:
        return []
    table = Address.__table__
    on_street = or_(
        *(
            and_(
                table.c.nis_code == nis if nis else table.c.nis_code.is_(None),
                table.c.street == name,
            )
            for nis, name in streets
        )
    )
    query = _address_select().where(on_street)
    if house_number is not None:
        query = query.where(_number_norm(table.c.house_number) == house_number)
    else:
        query = query.order_by(_number_value(table.c.house_number), table.c.house_number)
    return [AddressRow(*row) for row in connection.execute(query.limit(limit))]


def nearest_numbers(
    connection: Connection, street: tuple[str, str], house_number: str | None, *, limit: int = 5
) -> list[AddressRow]:
    """Addresses of one street with the house numbers closest to ``house_number``."""
    table = Address.__table__
    nis, name = street
    wanted = _digits_of(house_number)
    distance = func.abs(_number_value(table.c.house_number) - wanted)
    query = (
        _address_select()
        .where(
            table.c.nis_code == nis if nis else table.c.nis_code.is_(None),
            table.c.street == name,
        )
        .ext(distinct_on(distance, table.c.house_number))
        .order_by(distance, table.c.house_number, table.c.box.nulls_first(), table.c.id)
        .limit(limit)
    )
    return [AddressRow(*row) for row in connection.execute(query)]


def analyze_streets(connection: Connection) -> None:
    """Refresh the planner statistics of ``streets`` so lookups use the trigram index."""
    connection.execute(text("ANALYZE streets, postcodes"))


def _set_threshold(connection: Connection, value: float) -> None:
    connection.execute(select(func.set_config("pg_trgm.similarity_threshold", str(value), True)))


def _address_select():
    table = Address.__table__
    position = func.ST_Transform(table.c.geom, WGS84)
    return select(
        table.c.id,
        table.c.street,
        table.c.house_number,
        table.c.box,
        table.c.postcode,
        table.c.municipality,
        table.c.nis_code,
        func.ST_X(position).cast(Float),
        func.ST_Y(position).cast(Float),
        table.c.position_method,
    )


def _number_norm(column):
    # The SQL twin of bingeo.lookup.normalise_number for the characters house numbers use.
    return func.lower(func.regexp_replace(column, "[^0-9A-Za-z]", "", "g"))


def _number_value(column):
    return func.coalesce(func.nullif(func.substring(column, r"\d+"), "").cast(BigInteger), 0)


def _digits_of(number: str | None) -> int:
    match = re.search(r"\d{1,9}", number or "")
    return int(match.group()) if match else 0
