"""Bulk loading: ``COPY`` into a temporary staging table, then one upsert statement."""

from __future__ import annotations

import io
import itertools
import struct
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql
from sqlalchemy import Column, Connection, MetaData, Table, func, literal_column, not_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.sql import Select


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


# PostgreSQL's binary COPY: signature, flags, header extension length; trailer: field count -1.
BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
BINARY_HEADER = BINARY_SIGNATURE + bytes(8)
BINARY_TRAILER = b"\xff\xff"
EWKB_POINT = np.dtype(
    [("order", "u1"), ("kind", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")]
)
EWKB_POINT_WITH_SRID = 0x20000001


def copy_binary(connection: Connection, table: Table | str, tables: Iterable[pa.Table]) -> int:
    """Stream Arrow tables into ``table`` with one binary ``COPY``; returns the rows.

    Columns are matched by name; strings, binary (e.g. EWKB from :func:`ewkb_points`), int64
    and float64 columns are supported, nulls included. The rows are encoded by Arrow and numpy,
    never one Python object per value.
    """
    batches = iter(tables)
    first = next(batches, None)
    if first is None:
        return 0
    name = table if isinstance(table, str) else table.name
    driver = connection.connection.driver_connection
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
        sql.Identifier(name),
        sql.SQL(", ").join(sql.Identifier(c) for c in first.column_names),
    )
    rows = 0
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(BINARY_HEADER)
        for batch in itertools.chain([first], batches):
            copy.write(binary_rows(batch.select(first.column_names)))
            rows += batch.num_rows
        copy.write(BINARY_TRAILER)
    return rows


def binary_rows(table: pa.Table) -> memoryview:
    """The rows of ``table`` in the tuple format of binary ``COPY`` (no header, no trailer)."""
    n = table.num_rows
    if n == 0:
        return memoryview(b"")
    parts: list[pa.Array] = [_fixed_width(np.full(n, table.num_columns, dtype=">i2"))]
    for column in table.columns:
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        valid = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if _is_text(values.type):
            values = values.cast(pa.binary())
            lengths = np.asarray(pc.binary_length(values).fill_null(0), dtype=np.int64)
            values = values.fill_null(b"")
        elif pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            kind = ">i8" if pa.types.is_integer(values.type) else ">f8"
            numbers = values.fill_null(0).to_numpy(zero_copy_only=False).astype(kind)
            lengths = np.full(n, 8, dtype=np.int64)
            values = _fixed_width(numbers)
            values = pc.if_else(pa.array(valid), values, pa.scalar(b"", pa.binary()))
        else:
            raise TypeError(f"binary COPY of {values.type} is not supported")
        lengths[~valid] = -1
        parts += [_fixed_width(lengths.astype(">i4")), values]
    joined = pc.binary_join_element_wise(*parts, b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=n + 1)
    return memoryview(joined.buffers()[2])[offsets[0] : offsets[-1]]


def ewkb_points(x: np.ndarray, y: np.ndarray, srid: int) -> pa.Array:
    """Points as EWKB with SRID (binary; null where x or y is NaN), built by numpy."""
    n = len(x)
    points = np.zeros(n, dtype=EWKB_POINT)
    points["order"] = 1  # little endian
    points["kind"] = EWKB_POINT_WITH_SRID
    points["srid"] = srid
    points["x"], points["y"] = x, y
    encoded = _fixed_width(points)
    located = np.isfinite(x) & np.isfinite(y)
    return pc.if_else(pa.array(located), encoded, pa.scalar(None, pa.binary()))


def _is_text(kind: pa.DataType) -> bool:
    return any(
        check(kind) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)
    ) or pa.types.is_large_binary(kind)


def _fixed_width(values: np.ndarray) -> pa.Array:
    """A binary array whose items are the raw bytes of each element of ``values``."""
    width = values.dtype.itemsize
    offsets = np.arange(0, (len(values) + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(values).view(np.uint8)
    return pa.Array.from_buffers(
        pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def upsert_counts(connection: Connection, statement: Insert) -> tuple[int, int]:
    """Run an ``INSERT ... ON CONFLICT`` and return (inserted, updated) row counts."""
    # xmax is 0 for a freshly inserted row version and the updating transaction otherwise.
    upserted = statement.returning(literal_column("(xmax = 0)").label("inserted")).cte("upserted")
    inserted = func.count().filter(upserted.c.inserted)
    updated = func.count().filter(not_(upserted.c.inserted))
    row = connection.execute(select(inserted, updated)).one()
    return int(row[0]), int(row[1])


def copy_out_arrays(
    connection: Connection,
    columns: Sequence,
    bucket,
    dtypes: Sequence[str],
    where=(),
    *,
    source=None,
):
    """``columns`` of the rows matching ``where`` as numpy arrays (no NULLs), by binary ``COPY``.

    The server packs the rows into arrays per ``bucket`` value (about 65,000 rows each): ``COPY``
    sends one message per row, and a million small messages cost seconds in the client.
    """
    query = select(*(func.array_agg(c) for c in columns)).where(*where).group_by(bucket)
    if source is not None:
        query = query.select_from(source)
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(sql.SQL(str(compiled)))
    driver = connection.connection.driver_connection
    parts: list[list[np.ndarray]] = [[] for _ in dtypes]
    buffer = bytearray()
    header_done = False
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for data in copy:
            buffer += data
            if not header_done and len(buffer) >= len(BINARY_HEADER):
                if not buffer.startswith(BINARY_SIGNATURE):
                    raise RuntimeError("unexpected COPY header")
                extension = struct.unpack_from(">i", buffer, 15)[0]
                del buffer[: len(BINARY_HEADER) + extension]
                header_done = True
            while header_done and (consumed := _parse_array_row(buffer, dtypes, parts)):
                del buffer[:consumed]
    if bytes(buffer) != BINARY_TRAILER:
        raise RuntimeError("unexpected end of COPY data")
    return [
        np.concatenate(p) if p else np.empty(0, dtype=np.dtype(t).newbyteorder("="))
        for p, t in zip(parts, dtypes, strict=True)
    ]


def copy_out_table(
    connection: Connection, query: Select, types: dict[str, pa.DataType]
) -> pa.Table:
    """The rows of ``query`` as an Arrow table with the column ``types`` (in the query's order),
    by one CSV ``COPY``, parsed by Arrow in C++.

    Text columns may be dictionary types: each then holds every distinct value once.
    """
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    # NULL written as \N: an empty field stays an empty string (PostgreSQL quotes a value that
    # looks like the NULL marker).
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, NULL '\\N')").format(
        sql.SQL(str(compiled))
    )
    buffer = io.BytesIO()
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for data in copy:
            buffer.write(data)
    if not buffer.tell():
        return pa.table({name: pa.array([], type=kind) for name, kind in types.items()})
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=list(types)),
        # A quoted value may hold a line break (nothing forbids one in a street name).
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=["\\N"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def _parse_array_row(buffer: bytearray, dtypes: Sequence[str], parts: list[list[np.ndarray]]):
    """Parse one complete row of arrays at the start of ``buffer``; its length, or 0."""
    if len(buffer) < 2 or struct.unpack_from(">h", buffer, 0)[0] == -1:
        return 0
    position, arrays = 2, []
    for dtype in dtypes:
        if len(buffer) < position + 4:
            return 0
        length = struct.unpack_from(">i", buffer, position)[0]
        if length < 0 or len(buffer) < position + 4 + length:
            return 0 if length >= 0 else _fail("NULL array in COPY data")
        ndim = struct.unpack_from(">i", buffer, position + 4)[0]
        size = struct.unpack_from(">i", buffer, position + 16)[0] if ndim else 0
        element = np.dtype([("length", ">i4"), ("value", dtype)])
        items = np.frombuffer(buffer, dtype=element, count=size, offset=position + 24)
        if (items["length"] != np.dtype(dtype).itemsize).any():
            _fail("NULL value in COPY data")
        arrays.append(items["value"].astype(np.dtype(dtype).newbyteorder("=")))
        position += 4 + length
    for part, array in zip(parts, arrays, strict=True):
        part.append(array)
    return position


def _fail(message: str):
    raise RuntimeError(message)
