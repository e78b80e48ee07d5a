"""Benchmark: single free-text address lookups (issue 4, item 1), p50/p95/p99.

Queries are made from real stored addresses, half written correctly (in the variants people use)
and half with one letter of the street name changed. Each run uses a database of its own on the
embedded cluster, dropped at the end.

    .venv/bin/python scripts/bench_lookup.py                      # the Gent CRAB extract
    .venv/bin/python scripts/bench_lookup.py --national           # + 5.5 million synthetic
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Engine, create_engine, func, select

from bingeo.db import migrate
from bingeo.db.cluster import Cluster
from bingeo.db.models import Street
from bingeo.lookup import normalise_street
from bingeo.services.imports import import_addresses
from bingeo.services.lookup import lookup_address
from bingeo.settings import Settings

WARM_UP = 50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--national", action="store_true", help="also 5.5 million synthetic")
    parser.add_argument("--rows", type=int, default=5_500_000, help="synthetic addresses")
    parser.add_argument("--work-dir", type=Path, help="folder for the synthetic CSV")
    args = parser.parse_args()
    settings = Settings()
    if not settings.embedded:
        print("this benchmark runs on the embedded cluster; unset BINGEO_DATABASE_URL")
        return 2
    gent = Path(settings.real_data_dir) / "gent" / "gent_addresses_crab2014.csv"
    with_database(settings, "Gent CRAB 2014", lambda e: bench(e, [gent], args, gent_records))
    if args.national:
        with tempfile.TemporaryDirectory(prefix="bingeo_bench_") as scratch:
            folder = args.work_dir or Path(scratch)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"best_synthetic_{args.rows}_{args.seed}.csv"
            if not path.exists():
                started = time.perf_counter()
                _generator().generate_csv(path, args.rows, seed=args.seed)
                print(f"generated {path.name} in {time.perf_counter() - started:.0f} s")
            with_database(
                settings,
                f"synthetic national, {args.rows:,} addresses",
                lambda e: bench(e, [path], args, synthetic_records),
            )
    return 0


def with_database(settings: Settings, label: str, action) -> None:
    """Run ``action(engine)`` on a new migrated database; drop it afterwards."""
    cluster = Cluster(settings)
    cluster.start()
    name = f"bingeo_benchlookup_{os.getpid()}_{secrets.token_hex(3)}"
    cluster.ensure_database(name)
    engine = create_engine(cluster.url(name))
    try:
        migrate.upgrade(engine)
        print(f"\n== {label}")
        action(engine)
    finally:
        engine.dispose()
        cluster.drop_database(name)
        print(f"dropped database {name}")


def bench(engine: Engine, files: list[Path], args: argparse.Namespace, records) -> None:
    """Import, make the queries, time every lookup, print percentiles and accuracy."""
    for path in files:
        started = time.perf_counter()
        summary = import_addresses(engine, path, skip_invalid=True)
        print(
            f"imported {summary.stored:,} addresses from {path.name} in "
            f"{time.perf_counter() - started:.1f} s (lookup tables refreshed in the import)"
        )
    with engine.connect() as connection:
        streets = connection.execute(select(func.count()).select_from(Street)).scalar_one()
    print(f"{streets:,} streets")
    rng = random.Random(args.seed)
    sample = records(files[0], args.queries, rng)
    queries = []
    for i, row in enumerate(sample):
        typo = i % 2 == 1
        street = _typo(row["street"], rng) if typo else row["street"]
        queries.append((_variant(row, street, i // 2), row, typo))
    for text, _, _ in queries[:WARM_UP]:
        lookup_address(engine, text)
    times: dict[bool, list[float]] = {False: [], True: []}
    right: dict[bool, int] = {False: 0, True: 0}
    for text, row, typo in queries:
        started = time.perf_counter()
        result = lookup_address(engine, text)
        times[typo].append((time.perf_counter() - started) * 1000)
        best = result.best
        if best is not None and (best.street, best.house_number, best.postcode) == (
            row["street"],
            row["housenumber"],
            row["postcode"],
        ):
            right[typo] += 1
    every = times[False] + times[True]
    print(f"\n{'queries':<34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'right':>7}")
    for label, values, ok in (
        ("as written", times[False], right[False]),
        ("one letter changed in the street", times[True], right[True]),
        ("all", every, right[False] + right[True]),
    ):
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        share = ok / len(values)
        print(f"{label:<34} {len(values):>5} {p50:>8.2f} {p95:>8.2f} {p99:>8.2f} {share:>7.1%}")
    baseline(engine, queries[: min(200, len(queries))])


def baseline(engine: Engine, queries: list) -> None:
    """The obvious alternative: rank every street by pg_trgm similarity, no filter, no index."""
    table = Street.__table__
    values = []
    with engine.connect() as connection:
        for _, row, typo in queries:
            name = normalise_street(row["street"] if not typo else row["street"][::-1])
            similarity = func.similarity(table.c.name_norm, name)
            started = time.perf_counter()
            connection.execute(select(table.c.name).order_by(similarity.desc()).limit(5)).all()
            values.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(values, [50, 95])
    print(
        f"baseline: street by similarity() over all streets (one query, streets only): "
        f"p50 {p50:.2f} ms, p95 {p95:.2f} ms over {len(values)} queries"
    )


def gent_records(path: Path, n: int, rng: random.Random) -> list[dict[str, str]]:
    """``n`` located records of the Gent extract."""
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["lat"] and r["lon"]]
    return rng.sample(rows, n)


def synthetic_records(path: Path, n: int, rng: random.Random) -> list[dict[str, str]]:
    """``n`` located records of the synthetic file (from its first 500,000 rows)."""
    reader = pacsv.open_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in ("housenumber", "postcode", "lat", "box")}
        ),
    )
    batches, count = [], 0
    for batch in reader:
        batches.append(batch)
        count += batch.num_rows
        if count >= 500_000:
            break
    table = pa.Table.from_batches(batches)
    rows = [r for r in table.to_pylist() if r["lat"] and not r["box"]]
    return rng.sample(rows, n)


def _variant(row: dict[str, str], street: str, i: int) -> str:
    number, postcode, place = row["housenumber"], row["postcode"], row["municipality"]
    return [
        f"{street} {number}, {postcode} {place}",
        f"{street} {number}, {postcode} {place}".lower(),
        f"{number} {street}, {postcode} {place}",
        f"{street} {number} {postcode}",
    ][i % 4]


def _typo(name: str, rng: random.Random) -> str:
    positions = [i for i, c in enumerate(name) if c.isascii() and c.isalpha()]
    i = rng.choice(positions)
    new = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != name[i].lower()])
    return name[:i] + new + name[i + 1 :]


def _generator():
    """The synthetic BeST-like generator of bench/bench_import_addresses.py."""
    path = Path(__file__).with_name("bench_import_addresses.py")
    spec = importlib.util.spec_from_file_location("bench_import_addresses", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
