"""Benchmark: approximate positions for unlocated addresses (issue 15, point 5), on Gent.

Reads the Gent CRAB extract as an import does, places its unlocated records with
``bingeo.placement``, then hides the position of a sample of located records (fixed seed),
places them the same way and measures how far from their true position they land (metres,
EPSG:31370). ``--scale k`` also times the placement of k copies of the file, each in a postcode
of its own (about 5.5 million records for k = 40), in memory only.

    .venv/bin/python bench/bench_address_placement.py [--sample 2000] [--seed 15] [--scale 40]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from bingeo.addresses import read_addresses
from bingeo.placement import METHODS, place_addresses
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
        # Each copy in a postcode of its own: k times as many streets, as in a larger register.
        copies = [rows.assign(postcode=f"{k:04d}") for k in range(args.scale)]
        big = pd.concat(copies, ignore_index=True)
        del copies
        started = time.perf_counter()
        result = place_addresses(big)
        seconds = time.perf_counter() - started
        print(
            f"{len(big):,} records ({args.scale} copies of the file): placed "
            f"{int((result.method >= 0).sum()):,} in {seconds:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
