"""Benchmark: national-scale address import (issue 2) against the obvious alternatives.

Generates a synthetic BeST-like address CSV (deterministic), imports it into a database of its own
on the embedded cluster with ``bingeo.services.imports.import_addresses`` (empty table, then a
re-import of the same file), and measures ``geopandas.to_postgis`` and row-by-row inserts on a
subset for comparison (extrapolated to the full size, and labelled so). The database is dropped at
the end.

    .venv/bin/python bench/bench_import_addresses.py --rows 5500000
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pyproj import Transformer
from sqlalchemy import Engine, bindparam, create_engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bingeo.db import migrate
from bingeo.db.cluster import Cluster
from bingeo.db.models import SRID, Address
from bingeo.geometry import BELGIUM_BOUNDS_31370
from bingeo.services.imports import ImportSummary, import_addresses
from bingeo.settings import Settings

BBOX_4326 = (2.55, 49.5, 6.4, 51.5)
GENERATE_CHUNK = 500_000
UNLOCATED_SHARE = 0.02
DUPLICATE_SHARE = 0.0005
MUNICIPALITIES = 581
STREETS_PER_MUNICIPALITY = 150
FIRST = (
    "Kerk", "Molen", "Stations", "Dorps", "School", "Kapel", "Linden", "Beuken", "Eiken",
    "Berken", "Wilgen", "Populieren", "Nieuw", "Oud", "Hoog", "Laag", "Groen", "Zand", "Veld",
    "Bos", "Hof", "Kasteel", "Meers", "Heide", "Beek", "Brug", "Vaart", "Dijk", "Akker", "Koning",
    "Koningin", "Prins", "Pastoor", "Burgemeester", "Abdij", "Klooster", "Markt", "Smids",
    "Bakkers", "Weverij",
)  # fmt: skip
SECOND = (
    "", "hoek", "berg", "dal", "kouter", "veld", "bos", "meer", "wijk", "gaarde", "rode", "donk",
    "hout", "loo", "kant", "akker", "broek", "dries", "heuvel", "put",
)  # fmt: skip
SUFFIX = (
    "straat", "laan", "weg", "dreef", "plein", "steenweg", "baan", "pad", "hof", "wegel", "kaai",
    "lei", "singel", "vest",
)  # fmt: skip
UNQUOTED = pacsv.WriteOptions(quoting_style="none", quoting_header="none")
FRENCH = ("Rue", "Avenue", "Chaussée", "Place", "Chemin", "Clos", "Sentier", "Boulevard")


def street_vocabulary() -> list[str]:
    """Dutch and French street names, enough for about 87,000 (municipality, street) pairs."""
    dutch = [f"{a}{b}{c}" for a in FIRST for b in SECOND for c in SUFFIX]
    french = [f"{kind} du {a}{b}" for kind in FRENCH for a in FIRST for b in SECOND if b]
    return dutch + french


def generate_csv(path: Path, rows: int, *, seed: int) -> None:
    """Write ``rows`` BeST-like records (street ... lat, lon) to ``path``, deterministically."""
    vocab = pa.array(street_vocabulary())
    municipality_names = pa.array([f"Gemeente {i:03d}" for i in range(MUNICIPALITIES)])
    nis_codes = pa.array([str(11001 + 150 * i) for i in range(MUNICIPALITIES)])
    postcodes = pa.array([str(1000 + 15 * i) for i in range(MUNICIPALITIES)])
    letters = pa.array(["", "", "", "", "", "", "", "", "", "", "", "A", "B", "C", "D", "bis"])
    to_lonlat = Transformer.from_crs(31370, 4326, always_xy=True)
    minx, miny, maxx, maxy = BELGIUM_BOUNDS_31370
    tmp = path.with_suffix(".part")
    writer: pacsv.CSVWriter | None = None
    try:
        for start in range(0, rows, GENERATE_CHUNK):
            n = min(GENERATE_CHUNK, rows - start)
            rng = np.random.default_rng([seed, start])
            muni = rng.integers(0, MUNICIPALITIES, n)
            street = (muni * 97 + rng.integers(0, STREETS_PER_MUNICIPALITY, n)) % len(vocab)
            number = pc.binary_join_element_wise(
                pa.array(rng.integers(1, 400, n)).cast(pa.string()),
                letters.take(pa.array(rng.integers(0, len(letters), n))),
                "",
            )
            box_no = rng.integers(1, 40, n)
            box = pa.array(np.where(rng.random(n) < 0.15, box_no.astype(str), ""), type=pa.string())
            lon, lat = _lonlat_inside(rng, n, to_lonlat, (minx, miny, maxx, maxy))
            unlocated = rng.random(n) < UNLOCATED_SHARE
            lat_text = pa.array(np.round(lat, 7)).cast(pa.string())
            lon_text = pa.array(np.round(lon, 7)).cast(pa.string())
            empty = pa.array(unlocated)
            table = pa.table(
                {
                    "street": vocab.take(pa.array(street)),
                    "housenumber": number,
                    "box": box,
                    "postcode": postcodes.take(pa.array(muni)),
                    "municipality": municipality_names.take(pa.array(muni)),
                    "nis_code": nis_codes.take(pa.array(muni)),
                    "lat": pc.if_else(empty, "", lat_text),
                    "lon": pc.if_else(empty, "", lon_text),
                }
            )
            # Identical records (the same row twice) occur in real registers too.
            order = np.arange(n)
            copies = rng.random(n) < DUPLICATE_SHARE
            order[copies] = rng.integers(0, n, int(copies.sum()))
            table = table.take(pa.array(order))
            if writer is None:
                writer = pacsv.CSVWriter(str(tmp), table.schema, write_options=UNQUOTED)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)


def _lonlat_inside(
    rng: np.random.Generator,
    n: int,
    to_lonlat: Transformer,
    bounds: tuple[float, float, float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Random positions inside Belgium's Lambert extent and the EPSG:4326 box of the brief."""
    lon = np.empty(n)
    lat = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        x = rng.uniform(bounds[0], bounds[2], len(todo))
        y = rng.uniform(bounds[1], bounds[3], len(todo))
        a, b = to_lonlat.transform(x, y)
        ok = (a >= BBOX_4326[0]) & (a <= BBOX_4326[2]) & (b >= BBOX_4326[1]) & (b <= BBOX_4326[3])
        lon[todo[ok]], lat[todo[ok]] = a[ok], b[ok]
        todo = todo[~ok]
    return lon, lat


def client_cpu_s() -> float:
    """CPU seconds (user + system) of this process, all threads: independent of the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_pid(engine: Engine) -> int:
    """The server process of the pooled connection (the import reuses it: a pool of one)."""
    with engine.connect() as connection:
        return int(connection.execute(select(func.pg_backend_pid())).scalar_one())


def backend_cpu_s(pid: int) -> float | None:
    """CPU seconds of a PostgreSQL backend (its parallel index build workers not included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Results:
    """Rows of the final table: label, rows, seconds, and whether the figure is extrapolated."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.lines: list[tuple[str, int, float, float | None]] = []

    def add(self, label: str, rows: int, seconds: float) -> None:
        extrapolated = seconds * self.rows / rows if rows != self.rows else None
        self.lines.append((label, rows, seconds, extrapolated))

    def print(self) -> None:
        print(f"\n{'method':<58} {'rows':>10} {'seconds':>9} {'rows/s':>10} {'for N':>16}")
        for label, rows, seconds, extrapolated in self.lines:
            full = f"{extrapolated:,.0f} s (extrap.)" if extrapolated is not None else "measured"
            print(f"{label:<58} {rows:>10,} {seconds:>9.2f} {rows / seconds:>10,.0f} {full:>16}")


def timed(label: str, action: Callable[[], object]) -> tuple[float, object]:
    """Run ``action`` and return (seconds, result), saying what runs."""
    print(f"-- {label}", flush=True)
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def print_phases(title: str, timings: dict[str, float], total: float) -> None:
    """Where the time of one import went (client-side clocks; COPY overlaps with parsing)."""
    print(f"\n{title}: {total:.2f} s")
    for phase, seconds in timings.items():
        print(f"  {phase:<40} {seconds:>7.2f} s")


def print_summary(summary: ImportSummary) -> None:
    """The counts the import reported."""
    data = summary.as_dict()
    keys = ("read", "stored", "updated", "unchanged", "duplicates", "unlocated", "rejected")
    print("  counts: " + ", ".join(f"{k}={data[k]:,}" for k in keys))


def bench_to_postgis(engine: Engine, csv_path: Path, rows: int) -> float:
    """The geopandas way: read_csv, points_from_xy, to_crs, to_postgis (a table of its own)."""
    import geopandas as gpd
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_csv(csv_path, nrows=rows, dtype={"housenumber": str, "box": str})
    frame = frame.dropna(subset=["lat", "lon"])
    points = gpd.GeoDataFrame(
        frame.drop(columns=["lat", "lon"]),
        geometry=gpd.points_from_xy(frame["lon"], frame["lat"]),
        crs=4326,
    ).to_crs(SRID)
    points.to_postgis("bench_to_postgis", engine, if_exists="replace", index=False)
    return time.perf_counter() - start


def bench_row_by_row(engine: Engine, csv_path: Path, rows: int, *, orm: bool) -> float:
    """Row-by-row inserts of ``rows`` records (ORM objects, or a Core executemany upsert)."""
    import pandas as pd
    from geoalchemy2 import WKTElement
    from sqlalchemy.orm import Session

    frame = pd.read_csv(csv_path, nrows=rows, dtype=str, keep_default_na=False)
    located = frame[frame["lat"] != ""]
    xs, ys = Transformer.from_crs(4326, SRID, always_xy=True).transform(
        located["lon"].astype(float).to_numpy(), located["lat"].astype(float).to_numpy()
    )
    records = [
        {
            "source_key": f"{'orm' if orm else 'many'}:{i}",
            "street": r.street,
            "house_number": r.housenumber,
            "box": r.box or None,
            "postcode": r.postcode,
            "municipality": r.municipality,
            "nis_code": r.nis_code,
            "x": x,
            "y": y,
        }
        for i, (r, x, y) in enumerate(zip(located.itertuples(), xs, ys, strict=True))
    ]
    start = time.perf_counter()
    if orm:
        with Session(engine) as session:
            for record in records:
                x, y = record.pop("x"), record.pop("y")
                session.add(Address(**record, geom=WKTElement(f"POINT({x} {y})", srid=SRID)))
            session.flush()
            session.rollback()
    else:
        table = Address.__table__
        statement = pg_insert(table).values(
            {
                **{c: bindparam(c) for c in records[0] if c not in ("x", "y")},
                "geom": func.ST_SetSRID(func.ST_MakePoint(bindparam("x"), bindparam("y")), SRID),
            }
        )
        statement = statement.on_conflict_do_update(
            index_elements=["source_key"],
            set_={"street": statement.excluded.street, "geom": statement.excluded.geom},
        )
        with engine.connect() as connection:
            connection.execute(statement, records)
            connection.rollback()
    return (time.perf_counter() - start) * rows / len(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_500_000, help="rows of the synthetic file")
    parser.add_argument("--work-dir", type=Path, help="folder for the CSV (default: temporary)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--to-postgis-rows", type=int, default=200_000)
    parser.add_argument("--row-by-row-rows", type=int, default=20_000)
    parser.add_argument("--no-alternatives", action="store_true", help="only bingeo's import")
    args = parser.parse_args()

    settings = Settings()
    if not settings.embedded:
        print("this benchmark runs on the embedded cluster; unset BINGEO_DATABASE_URL")
        return 2
    with tempfile.TemporaryDirectory(prefix="bingeo_bench_") as scratch:
        work_dir = args.work_dir or Path(scratch)
        work_dir.mkdir(parents=True, exist_ok=True)
        csv_path = work_dir / f"best_synthetic_{args.rows}_{args.seed}.csv"
        if not csv_path.exists():
            seconds, _ = timed(
                f"generating {csv_path}", lambda: generate_csv(csv_path, args.rows, seed=args.seed)
            )
            print(f"   {seconds:.1f} s, {csv_path.stat().st_size / 1e6:,.0f} MB")
        else:
            print(f"-- reusing {csv_path}")
        rss_before = peak_rss_mb()
        return run(settings, csv_path, args, rss_before)


def run(settings: Settings, csv_path: Path, args: argparse.Namespace, rss_before: float) -> int:
    """Create the database, measure, print, drop the database."""
    cluster = Cluster(settings)
    cluster.start()
    name = f"bingeo_bench_{os.getpid()}_{secrets.token_hex(3)}"
    cluster.ensure_database(name)
    engine = create_engine(cluster.url(name))
    results = Results(args.rows)
    try:
        migrate.upgrade(engine)
        for label in ("import into an empty table", "re-import of the same file"):
            timings: dict[str, float] = {}
            pid = backend_pid(engine)
            cpu_before, server_before = client_cpu_s(), backend_cpu_s(pid)
            load_before = Path("/proc/loadavg").read_text().split()[0]
            seconds, summary = timed(
                f"bingeo {label}",
                lambda t=timings: import_addresses(
                    engine, csv_path, progress=lambda m: print(f"   {m}", flush=True), timings=t
                ),
            )
            assert isinstance(summary, ImportSummary)
            results.add(f"bingeo import_addresses: {label}", args.rows, seconds)
            print_phases(f"phases of {label}", timings, seconds)
            print_summary(summary)
            server_after = backend_cpu_s(pid) if backend_pid(engine) == pid else None
            server = (
                f"{server_after - server_before:.1f} s"
                if server_after is not None and server_before is not None
                else "unknown"
            )
            load_after = Path("/proc/loadavg").read_text().split()[0]
            print(
                f"  CPU: this process {client_cpu_s() - cpu_before:.1f} s (all threads), "
                f"server backend {server}; load average {load_before} before, {load_after} after"
            )
        rss_import = peak_rss_mb()
        if not args.no_alternatives:
            k = min(args.to_postgis_rows, args.rows)
            seconds, _ = timed(
                f"geopandas to_postgis of {k:,} rows", lambda: bench_to_postgis(engine, csv_path, k)
            )
            results.add("geopandas read_csv + to_crs + to_postgis (subset)", k, seconds)
            k = min(args.row_by_row_rows, args.rows)
            for orm, label in (
                (True, "SQLAlchemy ORM add() per row + flush (subset)"),
                (False, "Core executemany INSERT .. ON CONFLICT (subset)"),
            ):
                seconds, result = timed(
                    f"{label}: {k:,} rows",
                    lambda orm=orm: bench_row_by_row(engine, csv_path, k, orm=orm),
                )
                results.add(label, k, float(result))  # type: ignore[arg-type]
        results.print()
        print(
            f"\npeak RSS of this process: {rss_before:,.0f} MB before the imports "
            f"(generator), {rss_import:,.0f} MB after them, {peak_rss_mb():,.0f} MB at the end"
        )
    finally:
        engine.dispose()
        cluster.drop_database(name)
        print(f"dropped database {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
