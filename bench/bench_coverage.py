"""Benchmark: coverage per sector, for the country and one police zone, and all overlapping pairs.

Builds the synthetic national-scale data of ``bench_matching.py`` (addresses clustered in towns,
overlapping networks) plus synthetic sectors (Voronoi cells, denser in towns), municipalities
and police zones, in a temporary database of the embedded cluster; matches every address, then
measures side by side:

* bingeo: ``bingeo.services.coverage.coverage`` (figures per sector counted once per change of
  the stored facts, a scope is a selection of rows) for the whole country and for one police
  zone, and ``overlaps`` (STRtree self-query, kept until a network changes);
* geopandas: ``read_postgis`` + ``sjoin`` of addresses in sectors + ``groupby``; ``overlay`` of
  the networks with themselves;
* PostGIS: a ``GROUP BY`` over the stored address areas and matches.

    .venv/bin/python bench/bench_coverage.py --addresses 5500000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_matching as generator  # noqa: E402

from bingeo.db import areas as area_repo  # noqa: E402
from bingeo.db import migrate  # noqa: E402
from bingeo.db.cluster import Cluster  # noqa: E402
from bingeo.db.engine import make_engine  # noqa: E402
from bingeo.db.models import AreaLevel  # noqa: E402
from bingeo.services import coverage as service  # noqa: E402
from bingeo.services.matching import rematch_all  # noqa: E402
from bingeo.settings import Settings  # noqa: E402

ADMIN = generator.ADMIN


def main() -> None:
    """Parse the options, build the data, time each way and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    generator.add_data_options(parser, addresses=1_000_000, areas=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="profile one country coverage")
    args = parser.parse_args()

    database = f"bingeo_bench_{os.getpid()}"
    settings = Settings(database_name=database)
    if not settings.embedded:
        sys.exit("this benchmark creates its own database in the embedded cluster")
    cluster = Cluster(settings)
    cluster.ensure_database(database)
    engine = make_engine(settings, owner=True)
    try:
        migrate.upgrade(engine)
        _run(engine, args)
    finally:
        engine.dispose()
        cluster.drop_database(database)


def _run(engine: Engine, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    ids, x, y, town_of, towns = generator._addresses(rng, args.addresses, args.towns)
    polygons = generator._networks(rng, x, y, towns, args.networks)
    generator._store_addresses(engine, ids, x, y, town_of)
    generator._store_networks(engine, polygons)
    zone = _store_areas(engine, rng, towns, args)
    print(f"data generated and stored in {time.perf_counter() - started:.1f} s", flush=True)
    del ids, x, y, town_of

    started = time.perf_counter()
    stats = rematch_all(engine)
    print(f"matching: {stats.pairs:,} pairs in {time.perf_counter() - started:.2f} s", flush=True)
    if args.profile:
        import cProfile

        service.refresh_address_areas(engine, AreaLevel.sector)
        service.coverage(engine, ADMIN, level="sector")
        for call in (
            "service.coverage(engine, ADMIN, level='sector')",
            "service.overlaps(engine, ADMIN)",
        ):
            cProfile.runctx(call, globals(), locals(), sort="tottime")
        return
    started = time.perf_counter()
    service.refresh_address_areas(engine, AreaLevel.sector)
    refresh = time.perf_counter() - started
    print(f"address areas stored once (sector level) in {refresh:.2f} s", flush=True)

    rows: list[tuple[str, str, float]] = []

    def measure(task: str, method: str, call: Callable[[], object], repeat: int) -> object:
        times, result = [], None
        for _ in range(repeat):
            begun = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - begun)
        rows.append((task, method, statistics.median(times)))
        print(f"  {task:<34} {method:<34} {statistics.median(times) * 1000:9.1f} ms", flush=True)
        return result

    # The first call loads the stored facts into the process; later ones reuse them.
    measure(
        "coverage per sector, country",
        "bingeo, first call (loads facts)",
        lambda: service.coverage(engine, ADMIN, level="sector"),
        1,
    )
    country = measure(
        "coverage per sector, country",
        "bingeo (stored areas, bincount)",
        lambda: service.coverage(engine, ADMIN, level="sector"),
        args.repeat,
    )
    measure(
        "coverage per sector, country",
        "PostGIS GROUP BY (stored areas)",
        lambda: _postgis_group_by(engine),
        args.repeat,
    )
    frame = measure(
        "coverage per sector, country",
        "geopandas read + sjoin + groupby",
        lambda: _geopandas_coverage(engine),
        1,
    )
    assert (
        frame.set_index("code")["covered"].reindex(country.areas["code"]).fillna(0).to_numpy()
        == country.areas["covered"].to_numpy()
    ).all(), "geopandas and bingeo disagree"
    measure(
        f"coverage per sector, zone {zone}",
        "bingeo (stored areas, bincount)",
        lambda: service.coverage(engine, ADMIN, zone=zone, level="sector"),
        args.repeat * 4,
    )
    pairs = measure(
        "overlapping pairs, country",
        "bingeo (STRtree self-query)",
        lambda: service.overlaps(engine, ADMIN, min_overlap_m2=1.0),
        args.repeat,
    )
    overlay = measure(
        "overlapping pairs, country",
        "geopandas read + overlay",
        lambda: _geopandas_overlay(engine),
        1,
    )
    print(
        f"\noverlapping pairs: bingeo {len(pairs.pairs):,}, geopandas overlay {overlay:,}; "
        f"crossing a border: {len(pairs.crossings):,}; covered "
        f"{country.totals['covered']:,} of {country.totals['addresses']:,} addresses"
    )


def _store_areas(
    engine: Engine, rng: np.random.Generator, towns: tuple, args: argparse.Namespace
) -> str:
    """Sectors as Voronoi cells (seeds denser in towns), grouped into municipalities and zones."""
    centres, spread, sizes = towns
    minx, miny, maxx, maxy = generator.EXTENT
    in_towns = args.sectors // 2
    chosen = rng.choice(len(sizes), size=in_towns, p=sizes / sizes.sum())
    seeds = np.vstack(
        [
            centres[chosen] + rng.normal(0, 1.5, (in_towns, 2)) * spread[chosen, None],
            np.column_stack(
                [
                    rng.uniform(minx, maxx, args.sectors - in_towns),
                    rng.uniform(miny, maxy, args.sectors - in_towns),
                ]
            ),
        ]
    )
    seeds = seeds[(seeds[:, 0] > minx) & (seeds[:, 0] < maxx)]
    seeds = seeds[(seeds[:, 1] > miny) & (seeds[:, 1] < maxy)]
    extent = shapely.box(minx, miny, maxx, maxy)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=extent)
    )
    cells = shapely.intersection(cells, extent)
    # Municipalities: sectors grouped by their nearest municipality seed; zones likewise.
    centroids = shapely.get_coordinates(shapely.centroid(cells))
    municipality_seeds = rng.uniform((minx, miny), (maxx, maxy), (args.municipalities, 2))
    zone_of_municipality = rng.integers(0, args.zones, args.municipalities)
    municipality = _nearest(centroids, municipality_seeds)
    nis = np.array([f"{10000 + m}" for m in range(args.municipalities)])
    sectors = gpd.GeoDataFrame(
        {
            "code": [f"{nis[m]}S{i:05d}" for i, m in enumerate(municipality)],
            "name_nl": None,
            "name_fr": None,
            "nis_code": nis[municipality],
            "parent_code": None,
        },
        geometry=cells,
        crs=31370,
    )
    municipalities = sectors.dissolve("nis_code", as_index=False)
    municipalities["code"] = municipalities["nis_code"]
    municipalities["geometry"] = municipalities.geometry.apply(_multi)
    zone_code = {n: f"pz{zone_of_municipality[int(n) - 10000]:03d}" for n in nis}
    municipalities["zone"] = municipalities["code"].map(zone_code)
    zones = municipalities.dissolve("zone", as_index=False)
    zones["code"], zones["nis_code"] = zones["zone"], None
    zones["geometry"] = zones.geometry.apply(_multi)
    sectors["geometry"] = sectors.geometry.apply(_multi)
    # One transaction per level: the staging table lives until the commit.
    for level, frame in (
        (AreaLevel.sector, sectors),
        (AreaLevel.municipality, municipalities),
        (AreaLevel.police_zone, zones),
    ):
        with engine.begin() as connection:
            area_repo.upsert_areas(connection, level, frame)
    with engine.begin() as connection:
        area_repo.replace_police_zone_members(connection, sorted(map(_swap, zone_code.items())))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE reference_areas"))
    print(
        f"areas: {len(sectors):,} sectors, {len(municipalities):,} municipalities, "
        f"{len(zones):,} police zones",
        flush=True,
    )
    # A zone of typical size: the median number of sectors.
    counts = sectors["nis_code"].map(zone_code).value_counts()
    return str(counts.index[len(counts) // 2])


def _swap(item: tuple[str, str]) -> tuple[str, str]:
    return item[1], item[0]


def _multi(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    polygons = [g for g in shapely.get_parts(geometry) if g.geom_type == "Polygon"]
    return shapely.MultiPolygon(polygons)


def _nearest(points: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(shapely.points(seeds))
    return tree.query_nearest(shapely.points(points), all_matches=False)[1]


def _postgis_group_by(engine: Engine) -> list:
    query = """
        SELECT aa.area_id, count(*) AS addresses, count(c.address_id) AS covered
        FROM address_areas aa
        LEFT JOIN (SELECT DISTINCT an.address_id FROM address_networks an
                   JOIN networks n ON n.id = an.network_id WHERE n.status = 'active') c
          USING (address_id)
        WHERE aa.level = 'sector' GROUP BY aa.area_id
    """
    with engine.connect() as connection:
        return connection.execute(text(query)).all()


def _geopandas_coverage(engine: Engine) -> pd.DataFrame:
    with engine.connect() as connection:
        addresses = gpd.read_postgis(
            "SELECT id, geom FROM addresses WHERE geom IS NOT NULL", connection, geom_col="geom"
        )
        sectors = gpd.read_postgis(
            "SELECT id AS area_id, code, geom FROM reference_areas WHERE level = 'sector'",
            connection,
            geom_col="geom",
        )
        covered = pd.read_sql(
            "SELECT DISTINCT address_id FROM address_networks an JOIN networks n "
            "ON n.id = an.network_id WHERE n.status = 'active'",
            connection,
        )
    joined = gpd.sjoin(addresses, sectors, predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    joined["covered"] = joined["id"].isin(covered["address_id"])
    grouped = joined.groupby("code").agg(addresses=("id", "size"), covered=("covered", "sum"))
    return grouped.reset_index()


def _geopandas_overlay(engine: Engine) -> int:
    with engine.connect() as connection:
        networks = gpd.read_postgis(
            "SELECT id, geom FROM networks WHERE status = 'active'", connection, geom_col="geom"
        )
    other = networks.rename(columns={"id": "other"})
    pieces = gpd.overlay(networks, other, how="intersection", keep_geom_type=True)
    pieces = pieces[(pieces["id"] < pieces["other"]) & (pieces.geometry.area > 1.0)]
    return len(pieces)


if __name__ == "__main__":
    main()
