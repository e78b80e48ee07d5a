"""Addresses read from CRAB/BeST-style CSV files (lat/lon or x/y), as arrays, not objects."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pyproj import Transformer

from bingeo.errors import InvalidInput
from bingeo.files import pick_column
from bingeo.geometry import STORAGE_EPSG, epsg_of, outside_belgium

ID_COLUMNS = ("source_id", "address_id", "adres_id", "id", "objectid", "best_id")
STREET_COLUMNS = ("street", "streetname", "straatnaam", "street_name", "rue")
NUMBER_COLUMNS = ("housenumber", "house_number", "huisnummer", "number", "numero")
BOX_COLUMNS = ("box", "busnummer", "bus", "box_number", "boite")
POSTCODE_COLUMNS = ("postcode", "postal_code", "zipcode", "postcode_nl")
MUNICIPALITY_COLUMNS = ("municipality", "gemeente", "municipality_name", "commune")
NIS_COLUMNS = ("nis_code", "niscode", "nis", "cd_munty_refnis")
LAT_COLUMNS = ("lat", "latitude", "epsg_4326_lat")
LON_COLUMNS = ("lon", "lng", "longitude", "epsg_4326_lon")
X_COLUMNS = ("x", "epsg_31370_x", "epsg_3812_x")
Y_COLUMNS = ("y", "epsg_31370_y", "epsg_3812_y")
OUTPUT_COLUMNS = (
    "source_key",
    "street",
    "house_number",
    "box",
    "postcode",
    "municipality",
    "nis_code",
)
CHUNK_ROWS = 500_000
RECORD_SEPARATOR = "\x1f"  # joins the fields of a record before hashing it (ASCII unit separator)
HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True)
class AddressColumns:
    """Which CSV column holds what; None means: find it among the usual names."""

    source_id: str | None = None
    street: str | None = None
    house_number: str | None = None
    box: str | None = None
    postcode: str | None = None
    municipality: str | None = None
    nis_code: str | None = None
    lat: str | None = None
    lon: str | None = None
    x: str | None = None
    y: str | None = None


@dataclass
class AddressChunk:
    """A chunk of parsed addresses: text columns and Lambert 72 coordinates (null if unlocated).

    ``table`` has OUTPUT_COLUMNS, derived (key from the record), key_hash (64-bit hash of the
    key, to find repeated keys without comparing strings), row_no, x and y.
    """

    table: pa.Table
    first_row: int

    @property
    def frame(self) -> pd.DataFrame:
        """The chunk as a pandas frame (None for missing text, NaN for missing coordinates)."""
        return self.table.to_pandas()

    @property
    def key_hashes(self) -> np.ndarray:
        """The key hashes as an int64 array."""
        return self.table["key_hash"].to_numpy()


@dataclass
class AddressReadStats:
    """Counts kept while reading an address file."""

    read: int = 0
    unlocated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # time per reading phase

    def clock(self, phase: str, since: float) -> float:
        """Add the time from ``since`` to now to ``phase``; returns now."""
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - since
        return now


def read_addresses(
    path: Path,
    *,
    columns: AddressColumns | None = None,
    crs: str | None = None,
    source: str | None = None,
    stats: AddressReadStats | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[AddressChunk]:
    """Parse an address CSV in chunks; rejected rows are recorded in ``stats``, not yielded.

    Rows with no position are kept with NaN coordinates (unlocated). Rows without a street, with
    coordinates that are not numbers, or with a position outside Belgium are rejected.
    Addresses without a source id get a key derived from the whole record, so distinct records
    with the same street and number are all kept.
    """
    path = Path(path)
    stats = stats if stats is not None else AddressReadStats()
    header = _header(path)
    mapping = _resolve_columns(path, header, columns or AddressColumns())
    lonlat = mapping["lat"] is not None
    epsg = 4326 if lonlat else epsg_of(crs, default=STORAGE_EPSG, source=str(path))
    transformer = (
        Transformer.from_crs(epsg, STORAGE_EPSG, always_xy=True) if epsg != STORAGE_EPSG else None
    )
    prefix = f"{source}:" if source else ""
    usecols = list(dict.fromkeys(c for c in mapping.values() if c is not None))
    first_row = 2  # row 1 is the header
    for raw in _raw_chunks(path, usecols, chunk_rows, stats):
        chunk = _parse_chunk(path, raw, mapping, lonlat, transformer, prefix, first_row, stats)
        first_row += raw.num_rows
        yield chunk


def _raw_chunks(
    path: Path, usecols: list[str], chunk_rows: int, stats: AddressReadStats
) -> Iterator[pa.Table]:
    """The CSV as tables of exactly ``chunk_rows`` text columns (the last one shorter).

    pyarrow's streaming reader parses blocks of bytes in C++; the rows are re-cut so that callers
    see chunks of the requested size.
    """
    read_options = pacsv.ReadOptions(block_size=min(max(chunk_rows * 100, 1 << 20), 64 << 20))
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in usecols},
        include_columns=usecols,
        strings_can_be_null=False,
    )
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    started = time.perf_counter()
    try:
        reader = pacsv.open_csv(path, read_options=read_options, convert_options=convert)
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= chunk_rows:
                table = pa.Table.from_batches(pending).combine_chunks()
                stats.clock("parse CSV", started)
                yield table.slice(0, chunk_rows)
                started = time.perf_counter()
                rest = table.slice(chunk_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
    except pa.ArrowInvalid as exc:
        message = str(exc).strip().splitlines()[0]
        raise InvalidInput(f"{path}: malformed CSV ({message})") from exc
    if pending_rows:
        table = pa.Table.from_batches(pending).combine_chunks()
        stats.clock("parse CSV", started)
        yield table


def _header(path: Path) -> list[str]:
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not a UTF-8 text file") from exc
    if not header:
        raise InvalidInput(f"{path}: the file is empty")
    return header


def _resolve_columns(
    path: Path, header: list[str], columns: AddressColumns
) -> dict[str, str | None]:
    def pick(candidates: tuple[str, ...], explicit: str | None) -> str | None:
        try:
            return pick_column(header, candidates, explicit)
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc.detail}") from exc

    mapping = {
        "source_id": pick(ID_COLUMNS, columns.source_id),
        "street": pick(STREET_COLUMNS, columns.street),
        "house_number": pick(NUMBER_COLUMNS, columns.house_number),
        "box": pick(BOX_COLUMNS, columns.box),
        "postcode": pick(POSTCODE_COLUMNS, columns.postcode),
        "municipality": pick(MUNICIPALITY_COLUMNS, columns.municipality),
        "nis_code": pick(NIS_COLUMNS, columns.nis_code),
        "lat": pick(LAT_COLUMNS, columns.lat),
        "lon": pick(LON_COLUMNS, columns.lon),
        "x": None,
        "y": None,
    }
    if mapping["street"] is None:
        raise InvalidInput(
            f"{path}: required column 'street' missing (looked for {STREET_COLUMNS})"
        )
    if (mapping["lat"] is None) != (mapping["lon"] is None):
        raise InvalidInput(f"{path}: a 'lat' column needs a 'lon' column and the reverse")
    if mapping["lat"] is None:
        mapping["x"] = pick(X_COLUMNS, columns.x)
        mapping["y"] = pick(Y_COLUMNS, columns.y)
        if mapping["x"] is None or mapping["y"] is None:
            raise InvalidInput(
                f"{path}: required coordinate columns missing: lat/lon or x/y "
                f"(looked for {LAT_COLUMNS}, {LON_COLUMNS}, {X_COLUMNS}, {Y_COLUMNS})"
            )
    return mapping


def _parse_chunk(
    path: Path,
    raw: pa.Table,
    mapping: dict[str, str | None],
    lonlat: bool,
    transformer: Transformer | None,
    prefix: str,
    first_row: int,
    stats: AddressReadStats,
) -> AddressChunk:
    started = time.perf_counter()
    n = raw.num_rows
    stats.read += n
    rows = np.arange(first_row, first_row + n)
    first_col, second_col = (
        (mapping["lon"], mapping["lat"]) if lonlat else (mapping["x"], mapping["y"])
    )
    assert first_col is not None and second_col is not None
    a_text = pc.replace_substring(pc.utf8_trim_whitespace(raw[first_col]), ",", ".")
    b_text = pc.replace_substring(pc.utf8_trim_whitespace(raw[second_col]), ",", ".")
    a, b = _numbers(a_text), _numbers(b_text)
    blank = _mask(pc.equal(a_text, "")) & _mask(pc.equal(b_text, ""))
    malformed = ~blank & ~(np.isfinite(a) & np.isfinite(b))
    located = ~blank & ~malformed
    started = stats.clock("parse coordinates", started)
    if transformer is not None:
        xs, ys = np.full(n, np.nan), np.full(n, np.nan)
        xs[located], ys[located] = transformer.transform(a[located], b[located])
    else:
        xs, ys = a, b
    outside = located & outside_belgium(xs, ys)
    started = stats.clock("reproject", started)
    street = pc.utf8_trim_whitespace(raw[mapping["street"]])
    no_street = _mask(pc.equal(street, ""))
    reject = malformed | outside | no_street
    if reject.any():
        for row, reason in (
            *((r, "street is empty") for r in rows[no_street]),
            *(
                (r, f"coordinates are not numbers ({first_col}, {second_col})")
                for r in rows[malformed]
            ),
            *((r, "position outside Belgium") for r in rows[outside & ~no_street]),
        ):
            stats.rejected.append((int(row), f"{path}: row {row}: {reason}"))
    keep = ~reject
    kept = pa.array(keep)
    stats.unlocated += int((blank & keep).sum())

    out: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in OUTPUT_COLUMNS[1:]:
        column = mapping.get(name)
        if column is None:
            out[name] = pa.nulls(int(keep.sum()), pa.string())
            continue
        values = street if name == "street" else pc.utf8_trim_whitespace(raw[column])
        values = values.filter(kept)
        out[name] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    started = stats.clock("clean text columns", started)
    if mapping["source_id"]:
        ids = pc.utf8_trim_whitespace(raw[mapping["source_id"]]).filter(kept)
        keys = pc.binary_join_element_wise(f"{prefix}id:", ids, "")
        hashes = pd.util.hash_array(keys.to_numpy(zero_copy_only=False), categorize=False)
    else:
        record = pc.binary_join_element_wise(
            *(raw[c] for c in usecols_of(mapping)), RECORD_SEPARATOR
        ).filter(kept)
        hashes = pd.util.hash_array(record.to_numpy(zero_copy_only=False), categorize=False)
        keys = _hex_keys(f"{prefix}h:", hashes)
    stats.clock("derive keys", started)
    table = pa.table(
        {
            "source_key": keys,
            **out,
            "derived": pa.array(np.full(len(hashes), mapping["source_id"] is None)),
            "key_hash": pa.array(hashes.view(np.int64)),
            "row_no": pa.array(rows[keep]),
            # Millimetres are the precision of any Belgian register; NaN becomes null.
            "x": pa.array(np.round(xs[keep], 3), from_pandas=True),
            "y": pa.array(np.round(ys[keep], 3), from_pandas=True),
        }
    )
    return AddressChunk(table=table, first_row=first_row)


def _numbers(text: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numbers of a text column, NaN where blank or not a number."""
    blanked = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        numbers = pc.cast(blanked, pa.float64())
    except pa.ArrowInvalid:  # some cell is not a number: fall back to a per-cell conversion
        series = pd.Series(blanked.to_numpy(zero_copy_only=False), dtype=object)
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return numbers.to_numpy(zero_copy_only=False).astype(float, copy=False)


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _hex_keys(prefix: str, hashes: np.ndarray) -> pa.Array:
    """``prefix`` followed by the 16 hex digits of each hash, built without Python loops."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    digits = hashes.astype(">u8").view(np.uint8).reshape(-1, 8)
    out = np.empty((len(hashes), len(head) + 16), dtype=np.uint8)
    out[:, : len(head)] = head
    out[:, len(head) :: 2] = HEX_DIGITS[digits >> 4]
    out[:, len(head) + 1 :: 2] = HEX_DIGITS[digits & 15]
    return pa.array(out.view(f"S{out.shape[1]}").ravel(), type=pa.binary()).cast(pa.string())


def usecols_of(mapping: dict[str, str | None]) -> list[str]:
    """The source columns that define a record (for the derived key)."""
    return [c for key, c in mapping.items() if c is not None and key != "source_id"]


class KeyNumbering:
    """Numbers the occurrences of record keys over the chunks of one file, in file order.

    The first row of a key is occurrence 1. Keys are compared by their 64-bit hash; where the
    key is a source id (not the hash itself), a repeated hash is confirmed by comparing the key
    text, so two ids that merely share a hash are never taken for one.
    """

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.int64)  # sorted distinct hashes of earlier chunks
        self._first = np.empty(0, dtype=np.int64)  # file row (from 0) of each one's first row
        self._starts: list[int] = []  # file row of the first row of each earlier chunk
        self._rows = 0
        self._keys: list[pa.Array] = []  # per earlier chunk, to read a first occurrence's key
        self._counts: dict[object, int] = {}  # occurrences so far of keys that repeat
        self._confirmed: set[int] = set()  # hashes whose first occurrence is in ``_counts``

    def number(self, chunk: AddressChunk) -> np.ndarray:
        """The occurrence (1, 2, ...) of each row's key in the file so far."""
        hashes = chunk.key_hashes
        n = len(hashes)
        occurrence = np.ones(n, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        first = np.r_[True, ordered[1:] != ordered[:-1]] if n else np.ones(0, dtype=bool)
        repeated_here = np.zeros(n, dtype=bool)
        repeated_here[order] = ~first | np.r_[ordered[1:] == ordered[:-1], False]
        # Sorted queries into the sorted hashes seen so far walk memory in order.
        at = np.searchsorted(self._seen, ordered)
        known = np.zeros(n, dtype=bool)
        inside = at < len(self._seen)
        known[inside] = self._seen[at[inside]] == ordered[inside]
        seen_before = np.zeros(n, dtype=bool)
        seen_before[order] = known
        candidates = np.flatnonzero(seen_before | repeated_here)
        keys = chunk.table["source_key"].combine_chunks()
        if len(candidates):
            exact = not bool(chunk.table["derived"][0].as_py())
            self._first_occurrences(hashes[candidates[seen_before[candidates]]], exact)
            for row in candidates.tolist():
                identity = keys[row].as_py() if exact else int(hashes[row])
                count = self._counts.get(identity, 0) + 1
                self._counts[identity] = count
                occurrence[row] = count
                self._confirmed.add(int(hashes[row]))
        # Both are sorted: inserting the new distinct hashes is one linear copy, not a sort.
        # A stable sort puts the earliest row of equal hashes first, so ``order`` gives it.
        fresh = first & ~known
        self._seen = np.insert(self._seen, at[fresh], ordered[fresh])
        self._first = np.insert(self._first, at[fresh], order[fresh] + self._rows)
        self._starts.append(self._rows)
        self._rows += n
        self._keys.append(keys)
        return occurrence

    def _first_occurrences(self, hashes: np.ndarray, exact: bool) -> None:
        """Count the lone first rows (in earlier chunks) of ``hashes`` not counted yet."""
        missing = np.array(sorted({h for h in hashes.tolist() if h not in self._confirmed}))
        if not len(missing):
            return
        rows = self._first[np.searchsorted(self._seen, missing)]
        chunks = np.searchsorted(self._starts, rows, side="right") - 1
        for value, row, chunk in zip(missing.tolist(), rows.tolist(), chunks.tolist(), strict=True):
            keys = self._keys[chunk]
            identity = keys[row - self._starts[chunk]].as_py() if exact else value
            self._counts[identity] = self._counts.get(identity, 0) + 1
            self._confirmed.add(value)


def numbered_rows(chunk: AddressChunk, occurrence: np.ndarray) -> tuple[pa.Table, int]:
    """The rows to store of a chunk and the number of repeated source ids left out.

    A repeated derived key (an identical record) gets ``#<occurrence>`` appended, so every
    record is kept; a repeated source id keeps only its first row.
    """
    table = chunk.table
    repeat = occurrence > 1
    duplicates = 0
    if repeat.any():
        if bool(table["derived"][0].as_py()):
            suffix = pc.binary_join_element_wise("#", pa.array(occurrence).cast(pa.string()), "")
            keys = pc.if_else(
                pa.array(repeat),
                pc.binary_join_element_wise(table["source_key"], suffix, ""),
                table["source_key"],
            )
            table = table.set_column(0, "source_key", keys)
        else:
            duplicates = int(repeat.sum())
            table = table.filter(pa.array(~repeat))
    return table.select([*OUTPUT_COLUMNS, "x", "y"]), duplicates


def street_pairs(rows: pa.Table) -> pa.Table:
    """The distinct (nis_code, name) streets of some address rows ("" for no NIS code)."""
    pairs = pa.table({"nis_code": pc.fill_null(rows["nis_code"], ""), "name": rows["street"]})
    return pairs.group_by(["nis_code", "name"]).aggregate([])


def postcode_places(rows: pa.Table) -> pa.Table:
    """The (postcode, nis_code, municipality) places of some address rows with a postcode: per
    postcode and NIS code ("" for none) the first municipality name in byte order."""
    rows = rows.filter(pc.is_valid(rows["postcode"]))
    places = pa.table(
        {
            "postcode": rows["postcode"],
            "nis_code": pc.fill_null(rows["nis_code"], ""),
            "municipality": rows["municipality"],
        }
    )
    found = places.group_by(["postcode", "nis_code"]).aggregate([("municipality", "min")])
    return found.rename_columns(["postcode", "nis_code", "municipality"])


def distinct_places(places: list[pa.Table]) -> pa.Table:
    """The places of all ``places`` (from :func:`postcode_places`), once each."""
    if not places:
        return postcode_places(pa.table({n: pa.array([], pa.string()) for n in _PLACE_SOURCE}))
    return postcode_places(pa.concat_tables(places))


_PLACE_SOURCE = ("postcode", "nis_code", "municipality")


def distinct_streets(pairs: list[pa.Table]) -> pd.DataFrame:
    """The distinct streets of all ``pairs`` (from :func:`street_pairs`) as a frame."""
    if not pairs:
        return pd.DataFrame({"nis_code": [], "name": []}, dtype=object)
    merged = pa.concat_tables(pairs).group_by(["nis_code", "name"]).aggregate([])
    return merged.to_pandas()
