"""Benchmark: approximate positions for unlocated addresses (issue 15, point 5), on Gent.

Reads the Gent CRAB extract as an import does, places its unlocated records with
``bingeo.placement``, then hides the position of a sample of located records (fixed seed),
places them the same way and measures how far from their true position they land (metres,
EPSG:31370). ``--scale k`` also times the placement of k copies of the file as k times as many
streets (about 5.5 million records for k = 40), in memory only.

    .venv/bin/python bench/bench_address_placement.py [--sample 2000] [--seed 15] [--scale 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bingeo.addresses import read_addresses
from bingeo.placement import (
    METHODS,
    house_number_values,
    place,
    place_addresses,
    street_keys,
)
from bingeo.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000, help="located records hidden")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--scale", type=int, default=0, help="also time k copies of the file")
    args = parser.parse_args()
    path = Path(Settings().real_data_dir) / "gent" / "gent_addresses_crab2014.csv"
    rows = pa.concat_tables(chunk.table for chunk in read_addresses(path)).to_pandas()
    x, y = rows["x"].to_numpy(dtype=float), rows["y"].to_numpy(dtype=float)
    unlocated = ~np.isfinite(x)
    print(f"{path.name}: {len(rows):,} records, {int(unlocated.sum()):,} without a position")

    started = time.perf_counter()
    placed = place_addresses(rows)
    seconds = time.perf_counter() - started
    counts = placed.counts()
    print(f"placed {sum(counts.values()):,} of {int(unlocated.sum()):,} in {seconds:.2f} s:")
    for name, count in counts.items():
        print(f"  {name:16} {count:>7,}")

    rng = np.random.default_rng(args.seed)
    hidden = rng.choice(np.flatnonzero(~unlocated), size=args.sample, replace=False)
    hx, hy = x.copy(), y.copy()
    hx[hidden], hy[hidden] = np.nan, np.nan
    guess = place_addresses(rows.assign(x=hx, y=hy))
    error = np.hypot(guess.x[hidden] - x[hidden], guess.y[hidden] - y[hidden])
    method = guess.method[hidden]
    print(f"hidden sample: {args.sample:,} located records (seed {args.seed}), error in metres:")
    print(f"  {'method':16} {'records':>7} {'median':>7} {'p95':>7}")
    for code, name in [(None, "all"), *enumerate(m.value for m in METHODS)]:
        chosen = method >= 0 if code is None else method == code
        if chosen.any():
            median, p95 = np.percentile(error[chosen], [50, 95])
            print(f"  {name:16} {int(chosen.sum()):>7,} {median:>7.1f} {p95:>7.1f}")
    print(f"  not placed       {int((method < 0).sum()):>7,}")

    if args.scale:
        copies = args.scale
        keys = street_keys(rows["street"], rows["postcode"], rows["nis_code"], rows["municipality"])
        numbers, parity = house_number_values(rows["house_number"])
        codes = np.unique(keys, return_inverse=True)[1]
        big_keys = (codes[None, :] + np.arange(copies)[:, None] * (codes.max() + 1)).ravel()
        big = [np.tile(a, copies) for a in (numbers, parity, x, y)]
        started = time.perf_counter()
        result = place(big_keys, *big)
        seconds = time.perf_counter() - started
        print(
            f"{len(big_keys):,} records ({copies} copies as distinct streets): placed "
            f"{int((result.method >= 0).sum()):,} in {seconds:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
