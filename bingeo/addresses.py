"""Addresses read from CRAB/BeST-style CSV files (lat/lon or x/y), as arrays, not objects."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
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
    """A chunk of parsed addresses: text columns and Lambert 72 coordinates (NaN if unlocated)."""

    frame: pd.DataFrame  # OUTPUT_COLUMNS + derived (key from the record), row_no, x, y
    first_row: int


@dataclass
class AddressReadStats:
    """Counts kept while reading an address file."""

    read: int = 0
    unlocated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


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
    usecols = [c for c in mapping.values() if c is not None]
    try:
        reader = pd.read_csv(
            path,
            dtype=str,
            usecols=usecols,
            keep_default_na=False,
            chunksize=chunk_rows,
            encoding="utf-8-sig",
        )
        first_row = 2  # row 1 is the header
        for raw in reader:
            chunk = _parse_chunk(path, raw, mapping, lonlat, transformer, prefix, first_row, stats)
            first_row += len(raw)
            yield chunk
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: malformed CSV ({str(exc).strip().splitlines()[0]})") from exc


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
    raw: pd.DataFrame,
    mapping: dict[str, str | None],
    lonlat: bool,
    transformer: Transformer | None,
    prefix: str,
    first_row: int,
    stats: AddressReadStats,
) -> AddressChunk:
    stats.read += len(raw)
    rows = np.arange(first_row, first_row + len(raw))
    first_col, second_col = (
        (mapping["lon"], mapping["lat"]) if lonlat else (mapping["x"], mapping["y"])
    )
    a_text = raw[first_col].str.strip().str.replace(",", ".", regex=False)
    b_text = raw[second_col].str.strip().str.replace(",", ".", regex=False)
    a = pd.to_numeric(a_text, errors="coerce").to_numpy(dtype=float)
    b = pd.to_numeric(b_text, errors="coerce").to_numpy(dtype=float)
    blank = (a_text == "").to_numpy() & (b_text == "").to_numpy()
    malformed = ~blank & ~(np.isfinite(a) & np.isfinite(b))
    if transformer is not None:
        xs, ys = transformer.transform(a, b)
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    else:
        xs, ys = a, b
    located = ~blank & ~malformed
    outside = located & outside_belgium(xs, ys)
    street = raw[mapping["street"]].str.strip()
    no_street = (street == "").to_numpy()
    reject = malformed | outside | no_street
    for row, reason in (
        *((r, "street is empty") for r in rows[no_street]),
        *((r, f"coordinates are not numbers ({first_col}, {second_col})") for r in rows[malformed]),
        *((r, "position outside Belgium") for r in rows[outside & ~no_street]),
    ):
        stats.rejected.append((int(row), f"{path}: row {row}: {reason}"))
    keep = ~reject
    xs = np.where(blank, np.nan, xs)[keep]
    ys = np.where(blank, np.nan, ys)[keep]
    stats.unlocated += int((blank & keep).sum())

    out = pd.DataFrame(index=raw.index[keep])
    for name in OUTPUT_COLUMNS[1:]:
        column = mapping.get(name)
        values = raw.loc[keep, column].str.strip() if column else pd.Series("", index=out.index)
        out[name] = values.where(values != "", None)
    out["street"] = street[keep]
    if mapping["source_id"]:
        ids = raw.loc[keep, mapping["source_id"]].str.strip()
        out["source_key"] = prefix + "id:" + ids
    else:
        hashed = pd.util.hash_pandas_object(raw.loc[keep, usecols_of(mapping)], index=False)
        out["source_key"] = prefix + "h:" + hashed.map("{:016x}".format)
    out["derived"] = mapping["source_id"] is None
    out["row_no"] = rows[keep]
    out["x"] = xs
    out["y"] = ys
    return AddressChunk(
        frame=out[[*OUTPUT_COLUMNS, "derived", "row_no", "x", "y"]].reset_index(drop=True),
        first_row=first_row,
    )


def usecols_of(mapping: dict[str, str | None]) -> list[str]:
    """The source columns that define a record (for the derived key)."""
    return [c for key, c in mapping.items() if c is not None and key != "source_id"]
