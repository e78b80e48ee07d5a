"""Benchmark: every address to every network covering it, stored in PostGIS, three ways.

Generates deterministic synthetic national-scale data (addresses clustered in towns, networks of
50-400 vertices covering 20-40 % of the addresses, some overlapping) in a temporary database of
the embedded cluster, then measures side by side, each in a fresh process (so peak memory is the
method's own):

* bingeo: ``bingeo.services.matching.rematch_all`` (COPY out, numpy + prepared shapely, COPY in);
* (a) geopandas: ``read_postgis`` of addresses and networks, ``sjoin(predicate="intersects")``,
  the pairs written with the same binary COPY as bingeo;
* (b) PostGIS: ``INSERT INTO address_networks SELECT ... JOIN ... ON ST_Covers`` with GiST indexes;

and the incremental update after editing one network (``update_network`` of the service).

    .venv/bin/python bench/bench_matching.py --addresses 5500000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import shapely
from geoalchemy2.shape import from_shape
from psycopg import sql
from shapely import affinity
from shapely.geometry import MultiPolygon
from sqlalchemy import Engine, MetaData, Table, func, insert, select, text
from sqlalchemy.schema import CreateIndex, DropIndex

from bingeo.access import Actor, Principal
from bingeo.db import matching as match_repo
from bingeo.db import migrate
from bingeo.db.cluster import Cluster
from bingeo.db.engine import make_engine
from bingeo.db.models import SRID, Address, AddressNetwork, Network, Role
from bingeo.matching import AddressPoints, Pairs, match
from bingeo.settings import Settings

ADDRESSES = Address.__table__
NETWORKS = Network.__table__
PAIRS = AddressNetwork.__table__
ADMIN = Actor(principal=Principal(user_id=1, name="bench", role=Role.admin))
# Lambert 72 extent of Belgium, roughly.
EXTENT = (25_000.0, 25_000.0, 290_000.0, 240_000.0)
TARGET_COVERAGE = 0.30


def add_data_options(
    parser: argparse.ArgumentParser, *, addresses: int, areas: bool = False
) -> None:
    """The options of the synthetic national data, shared by every benchmark that builds it."""
    parser.add_argument("--addresses", type=int, default=addresses)
    parser.add_argument("--networks", type=int, default=1200)
    parser.add_argument("--towns", type=int, default=2500)
    if areas:
        parser.add_argument("--sectors", type=int, default=19_800)
        parser.add_argument("--municipalities", type=int, default=581)
        parser.add_argument("--zones", type=int, default=185)
    parser.add_argument("--seed", type=int, default=20240601)


def main() -> None:
    """Parse the options, build the data, run the three methods and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_options(parser, addresses=1_000_000)
    parser.add_argument("--edits", type=int, default=100, help="incremental edits to time")
    parser.add_argument(
        "--only-bingeo",
        action="store_true",
        help="skip the alternatives (geopandas, PostGIS): bingeo's rematch and incremental edits",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (to profile)")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "DATABASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return

    database = f"bingeo_bench_{os.getpid()}"
    settings = Settings(database_name=database)
    if not settings.embedded:
        sys.exit("this benchmark creates its own database in the embedded cluster")
    cluster = Cluster(settings)
    cluster.ensure_database(database)
    engine = make_engine(settings, owner=True)
    try:
        migrate.upgrade(engine)
        _run(engine, database, args)
    finally:
        engine.dispose()
        if args.keep:
            print(f"kept database {database}")
        else:
            cluster.drop_database(database)


def _run(engine: Engine, database: str, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    ids, x, y, town_of, towns = _addresses(rng, args.addresses, args.towns)
    polygons = _networks(rng, x, y, towns, args.networks)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    _store_addresses(engine, ids, x, y, town_of)
    _store_networks(engine, polygons)
    stored = time.perf_counter() - started
    vertices = [len(p.exterior.coords) - 1 for p in polygons]
    print(
        f"data: {args.addresses:,} addresses in {args.towns:,} towns, {len(polygons):,} networks "
        f"(vertices median {statistics.median(vertices):.0f}, min {min(vertices)}, "
        f"max {max(vertices)}); generated in {generated:.1f} s, stored in {stored:.1f} s",
        flush=True,
    )
    del ids, x, y, town_of

    results = {}
    methods = ("bingeo",) if args.only_bingeo else ("bingeo", "geopandas", "postgis")
    for method in methods:
        _empty_pairs(engine)
        print(f"running {method} ...", flush=True)
        results[method] = _in_child(method, database)
    with engine.connect() as connection:
        covered = connection.execute(
            select(func.count(func.distinct(PAIRS.c.address_id)))
        ).scalar_one()
    _empty_pairs(engine)
    results["bingeo_again"] = _in_child("bingeo", database)
    print(
        "running bingeo with the stored pairs current, and the PostGIS join alone ...", flush=True
    )
    results["bingeo_current"] = _in_child("bingeo", database)
    if not args.only_bingeo:
        results["postgis_join"] = _in_child("postgis_join", database)
    edits = _incremental(engine, args.edits, rng)
    _print(results, edits, covered / args.addresses)


# data ------------------------------------------------------------------------------------------


def _addresses(rng: np.random.Generator, count: int, towns: int) -> tuple:
    """Points clustered in towns of very unequal size (a few cities, many villages)."""
    minx, miny, maxx, maxy = EXTENT
    centres = np.column_stack([rng.uniform(minx, maxx, towns), rng.uniform(miny, maxy, towns)])
    weights = rng.pareto(1.1, towns) + 1.0
    sizes = rng.multinomial(count, weights / weights.sum())
    spread = np.clip(120.0 * np.sqrt(sizes / 150.0), 150.0, 6000.0)
    town_of = np.repeat(np.arange(towns), sizes)
    x = centres[town_of, 0] + rng.normal(0.0, 1.0, count) * spread[town_of]
    y = centres[town_of, 1] + rng.normal(0.0, 1.0, count) * spread[town_of]
    # Millimetres, as an address register gives them.
    x, y = np.round(x, 3), np.round(y, 3)
    return np.arange(1, count + 1, dtype=np.int64), x, y, town_of, (centres, spread, sizes)


def _networks(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, towns: tuple, count: int
) -> list[shapely.Polygon]:
    """Wobbly star-shaped polygons around parts of towns; big towns get several (overlapping)."""
    centres, spread, sizes = towns
    chosen = rng.choice(len(sizes), size=count, p=sizes / sizes.sum())
    offsets = rng.normal(0.0, 0.9, (count, 2)) * spread[chosen, None]
    centre = centres[chosen] + offsets
    radius = spread[chosen] * rng.uniform(0.25, 0.7, count)
    vertices = (50 + 350 * rng.beta(1.3, 3.0, count)).astype(int)
    phases = rng.uniform(0, 2 * np.pi, (count, 3))
    shapes = []
    for i in range(count):
        n = vertices[i]
        theta = np.sort((np.arange(n) + rng.uniform(0.0, 0.8, n)) * 2 * np.pi / n)
        wobble = (
            1.0
            + 0.25 * np.sin(3 * theta + phases[i, 0])
            + 0.1 * np.sin(7 * theta + phases[i, 1])
            + 0.04 * np.sin(17 * theta + phases[i, 2])
        )
        shapes.append((centre[i], theta, wobble, radius[i]))
    points = AddressPoints.from_arrays(np.arange(len(x)), x, y)

    def build(scale: float) -> list[shapely.Polygon]:
        return [
            shapely.Polygon(
                np.column_stack(
                    [c[0] + scale * r * w * np.cos(t), c[1] + scale * r * w * np.sin(t)]
                ).round(3)
            )
            for c, t, w, r in shapes
        ]

    # Scale all radii together until the networks cover the target share of the addresses.
    low, high = 0.2, 5.0
    for _ in range(12):
        scale = (low * high) ** 0.5
        pairs = match(points, list(enumerate(build(scale))))
        share = len(np.unique(pairs.address_ids)) / len(x)
        if abs(share - TARGET_COVERAGE) < 0.01:
            break
        low, high = (scale, high) if share < TARGET_COVERAGE else (low, scale)
    return build(scale)


def _store_addresses(
    engine: Engine, ids: np.ndarray, x: np.ndarray, y: np.ndarray, town_of: np.ndarray
) -> None:
    """Binary COPY (fixed-width rows) with the indexes built once afterwards."""
    row = np.dtype(
        [
            ("n", ">i2"),
            ("l0", ">i4"),
            ("id", ">i8"),
            ("l1", ">i4"),
            ("key", "S10"),
            ("l2", ">i4"),
            ("street", "S6"),
            ("l3", ">i4"),
            ("order", "u1"),
            ("type", "<u4"),
            ("srid", "<u4"),
            ("x", "<f8"),
            ("y", "<f8"),
        ]
    )
    rows = np.empty(len(ids), dtype=row)
    rows["n"], rows["l0"], rows["l1"], rows["l2"], rows["l3"] = 4, 8, 10, 6, 25
    rows["id"] = ids
    rows["key"] = np.char.add(b"b", np.char.zfill(ids.astype("S9"), 9))
    rows["street"] = np.char.add(b"s", np.char.zfill(town_of.astype("S5"), 5))
    rows["order"], rows["type"], rows["srid"] = 1, 0x20000001, SRID
    rows["x"], rows["y"] = x, y
    with engine.begin() as connection:
        table = Table(ADDRESSES.name, MetaData(), autoload_with=connection)
        indexes = list(table.indexes)
        for index in indexes:
            connection.execute(DropIndex(index))
        statement = sql.SQL(
            "COPY addresses (id, source_key, street, geom) FROM STDIN (FORMAT binary)"
        )
        driver = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for start in range(0, len(rows), 500_000):
                copy.write(rows[start : start + 500_000].tobytes())
            copy.write(b"\xff\xff")
        for index in indexes:
            connection.execute(CreateIndex(index))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE addresses"))


def _store_networks(engine: Engine, polygons: list[shapely.Polygon]) -> None:
    values = [
        {
            "code": f"N{i:05d}",
            "name": f"Network {i}",
            "kind": "BIN",
            "status": "active",
            "geom": from_shape(MultiPolygon([p]), srid=SRID),
        }
        for i, p in enumerate(polygons, start=1)
    ]
    with engine.begin() as connection:
        connection.execute(insert(NETWORKS), values)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE networks"))


def _empty_pairs(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(PAIRS.delete())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE address_networks"))


# the three methods, each in its own process ----------------------------------------------------


def _in_child(method: str, database: str) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", method, database]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{method} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(method: str, database: str) -> dict:
    engine = make_engine(Settings(database_name=database), owner=True)
    started = time.perf_counter()
    methods = {
        "bingeo": _bingeo,
        "geopandas": _geopandas,
        "postgis": _postgis,
        "postgis_join": _postgis_join,
    }
    phases = methods[method](engine)
    total = time.perf_counter() - started
    with engine.connect() as connection:
        pairs = match_repo.count_pairs(connection)
    engine.dispose()
    return {"total_s": total, "pairs": pairs, "peak_mb": _peak_mb(), **phases}


def _peak_mb() -> float:
    """Peak resident memory of this process in MB.

    Linux keeps ``getrusage``'s ``ru_maxrss`` across fork and exec, so a child would report the
    parent's peak; the kernel's ``VmHWM`` is the process's own. ``ru_maxrss`` elsewhere.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bingeo(engine: Engine) -> dict:
    from bingeo.services.matching import rematch_all

    stats = rematch_all(engine)
    return {"load_s": stats.load_s, "match_s": stats.match_s, "store_s": stats.store_s}


def _geopandas(engine: Engine) -> dict:
    import geopandas as gpd

    started = time.perf_counter()
    with engine.connect() as connection:
        addresses = gpd.read_postgis(
            select(ADDRESSES.c.id, ADDRESSES.c.geom).where(ADDRESSES.c.geom.is_not(None)),
            connection,
            geom_col="geom",
        )
        networks = gpd.read_postgis(select(NETWORKS.c.id, NETWORKS.c.geom), connection, "geom")
    loaded = time.perf_counter()
    joined = gpd.sjoin(
        addresses, networks, how="inner", predicate="intersects", lsuffix="a", rsuffix="n"
    )
    matched = time.perf_counter()
    pairs = Pairs(joined["id_n"].to_numpy(dtype=np.int32), joined["id_a"].to_numpy(dtype=np.int64))
    with engine.begin() as connection:
        match_repo.replace_all_pairs(connection, pairs)
    stored = time.perf_counter()
    return {"load_s": loaded - started, "match_s": matched - loaded, "store_s": stored - matched}


def _postgis(engine: Engine) -> dict:
    join = select(NETWORKS.c.id, ADDRESSES.c.id).join(
        ADDRESSES, func.ST_Covers(NETWORKS.c.geom, ADDRESSES.c.geom)
    )
    with engine.begin() as connection:
        connection.execute(insert(PAIRS).from_select(["network_id", "address_id"], join))
    return {}


def _postgis_join(engine: Engine) -> dict:
    """The join alone, nothing written: what (b) costs without the foreign-key checks."""
    join = select(func.count()).select_from(
        NETWORKS.join(ADDRESSES, func.ST_Covers(NETWORKS.c.geom, ADDRESSES.c.geom))
    )
    with engine.connect() as connection:
        started = time.perf_counter()
        pairs = connection.execute(join).scalar_one()
    return {"match_s": time.perf_counter() - started, "pairs": pairs}


# incremental -----------------------------------------------------------------------------------


def _incremental(engine: Engine, edits: int, rng: np.random.Generator) -> dict:
    """Edit networks one at a time through the service; time the call and its rematch.

    The first edit of the process is reported apart (cold: first statements of this kind, caches
    of the driver and of SQLAlchemy empty); the others are warm.
    """
    from bingeo.services import matching as matching_service
    from bingeo.services import networks as network_service

    rematches: list[tuple[float, int]] = []
    original = matching_service.rematch_network

    def timed(*args, **kwargs):
        started = time.perf_counter()
        stats = original(*args, **kwargs)
        rematches.append((time.perf_counter() - started, stats.added + stats.removed))
        return stats

    network_service.rematch_network = timed
    with engine.connect() as connection:
        ids = [r[0] for r in connection.execute(select(NETWORKS.c.id).order_by(NETWORKS.c.id))]
    calls = []
    try:
        for network_id in rng.choice(ids, size=min(edits, len(ids)), replace=False).tolist():
            current = network_service.get_network(engine, ADMIN, network_id)
            grown = affinity.scale(current.geometry, 1.15, 1.15, origin="centroid")
            started = time.perf_counter()
            network_service.update_network(
                engine, ADMIN, network_id, version=current.version, changes={"geometry": grown}
            )
            calls.append(time.perf_counter() - started)
    finally:
        network_service.rematch_network = original
    return {
        "calls": calls,
        "rematch": [t for t, _ in rematches],
        "written": [n for _, n in rematches],
    }


def _print(results: dict, edits: dict, coverage: float) -> None:
    print()
    print(f"addresses covered by at least one network: {coverage:.1%}")
    header = f"{'method':<34} {'load s':>8} {'match s':>8} {'store s':>8} {'total s':>8}"
    print(header + f" {'pairs':>10} {'peak MB':>8}")
    labels = {
        "bingeo": "bingeo rematch_all",
        "bingeo_again": "bingeo rematch_all (2nd run)",
        "geopandas": "(a) geopandas read_postgis+sjoin",
        "postgis": "(b) PostGIS INSERT..SELECT join",
        "bingeo_current": "bingeo rematch_all, pairs current",
        "postgis_join": "PostGIS join alone (no write)",
    }
    for key, label in labels.items():
        if key not in results:
            continue
        r = results[key]
        cells = [
            f"{r[k]:8.2f}" if k in r else f"{'-':>8}" for k in ("load_s", "match_s", "store_s")
        ]
        print(
            f"{label:<34} {' '.join(cells)} {r['total_s']:8.2f} {r['pairs']:>10,} "
            f"{r['peak_mb']:8.0f}"
        )
    compared = [k for k in ("bingeo", "bingeo_again", "geopandas", "postgis") if k in results]
    counts = {results[k]["pairs"] for k in compared}
    print(f"same pair count in all: {'yes' if len(counts) == 1 else 'NO: ' + str(counts)}")
    if "geopandas" in results:
        best = min(results["geopandas"]["total_s"], results["postgis"]["total_s"])
        ours = min(results["bingeo"]["total_s"], results["bingeo_again"]["total_s"])
        print(f"speed-up of bingeo vs the faster alternative: {best / ours:.1f}x (goal >= 3x)")
    calls_ms = np.array(edits["calls"]) * 1000
    rematch_ms = np.array(edits["rematch"]) * 1000
    written = np.array(edits["written"])
    warm, warm_rematch = calls_ms[1:], rematch_ms[1:]
    print(
        f"incremental, {len(calls_ms)} edits (area grown 15 %), goal < 200 ms: update_network "
        f"call, warm ({len(warm)}): median {np.median(warm):.0f} ms, p95 "
        f"{np.percentile(warm, 95):.0f} ms, max {warm.max():.0f} ms; cold (first edit): "
        f"{calls_ms[0]:.0f} ms"
    )
    print(
        f"  its rematch, warm: median {np.median(warm_rematch):.0f} ms, p95 "
        f"{np.percentile(warm_rematch, 95):.0f} ms, max {warm_rematch.max():.0f} ms; pairs "
        f"written per edit median {np.median(written):.0f}, p95 "
        f"{np.percentile(written, 95):.0f}, max {written.max()}"
    )
    small = written[1:] <= np.percentile(written[1:], 90)
    print(
        f"  warm edits writing <= {np.percentile(written[1:], 90):.0f} pairs (90 %): call p95 "
        f"{np.percentile(warm[small], 95):.0f} ms; the 10 % writing more: median "
        f"{np.median(warm[~small]):.0f} ms, "
        f"{np.median(warm[~small] / np.maximum(written[1:][~small], 1)) * 1000:.0f} us per pair"
    )


if __name__ == "__main__":
    main()
