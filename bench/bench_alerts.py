"""Benchmark: alert preview through the HTTP API against a plain PostGIS query, national scale.

Builds the synthetic national data of ``bench_matching`` (same generator: addresses clustered in
towns, 1,200 wobbly networks, all active) in a temporary database of the embedded cluster, adds
members and a coordinator per network, starts ``bingeo serve`` and sends ``POST /alerts/preview``
for circles of 200 m to 5 km and drawn polygons around populated places, with one client and with
8 concurrent clients. Side by side, a plain PostGIS query computes the same counts for the same
areas (networks reached, addresses inside, inside a reached network, within 25 m of the edge);
the counts of both are compared.

    .venv/bin/python bench/bench_alerts.py --addresses 5500000 --requests 1000 --keep
    .venv/bin/python bench/bench_alerts.py --addresses 5500000 --requests 1000 --database <kept>
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import shapely
from sqlalchemy import Engine, func, insert, literal, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_matching import (  # noqa: E402 (the generator of the matching benchmark)
    _addresses,
    _networks,
    _store_addresses,
    _store_networks,
    add_data_options,
)

from bingeo.db import migrate  # noqa: E402
from bingeo.db.cluster import Cluster  # noqa: E402
from bingeo.db.engine import make_engine  # noqa: E402
from bingeo.db.models import (  # noqa: E402
    SRID,
    Address,
    Member,
    Network,
    NetworkContact,
    Role,
)
from bingeo.geometry import geojson_to_storage, storage_to_geojson  # noqa: E402
from bingeo.matching import lonlat_to_storage  # noqa: E402
from bingeo.services.users import add_user, create_token  # noqa: E402
from bingeo.settings import Settings  # noqa: E402

ADDRESSES = Address.__table__
NETWORKS = Network.__table__
RADII = (200.0, 500.0, 1000.0, 2000.0, 5000.0)
CONSENT = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def main() -> None:
    """Build the data, serve the API, time both ways, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_options(parser, addresses=1_000_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--database", help="reuse a database kept by an earlier run with the same data options"
    )
    args = parser.parse_args()
    database = args.database or f"bingeo_bench_alerts_{os.getpid()}"
    keep = args.keep or bool(args.database)
    settings = Settings(database_name=database)
    if not settings.embedded:
        sys.exit("this benchmark creates its own database in the embedded cluster")
    cluster = Cluster(settings)
    cluster.ensure_database(database)
    engine = make_engine(settings, owner=True)
    server = None
    try:
        migrate.upgrade(engine)
        rng = np.random.default_rng(args.seed)
        started = time.perf_counter()
        ids, x, y, town_of, towns = _addresses(rng, args.addresses, args.towns)
        if args.database:
            print(f"reusing {database}", flush=True)
        else:
            polygons = _networks(rng, x, y, towns, args.networks)
            _store_addresses(engine, ids, x, y, town_of)
            _store_networks(engine, polygons)
            _members(engine, rng, ids, x, y, polygons)
            add_user(engine, "bench", Role.admin)
            print(
                f"data: {args.addresses:,} addresses, {len(polygons):,} networks, stored in "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
        bodies = _bodies(random.Random(args.seed), x, y, args.requests)
        del ids, x, y, town_of
        token = create_token(engine, "bench", label="bench")[1]
        port = _free_port()
        server = _serve(database, port)
        url = f"http://127.0.0.1:{port}/alerts/preview"
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        with httpx.Client(timeout=120) as client:
            first = client.post(url, json=bodies[0][1], headers=headers)
            first.raise_for_status()
        print(f"first preview (loads the read model): {time.perf_counter() - started:.1f} s")
        results = {
            "api_1": _run_api(url, headers, bodies, 1),
            f"api_{args.clients}": _run_api(url, headers, bodies, args.clients),
            "postgis_1": _run_postgis(engine, bodies, 1),
            f"postgis_{args.clients}": _run_postgis(engine, bodies, args.clients),
        }
        _print(results, bodies, args.clients)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        engine.dispose()
        if keep:
            print(f"kept database {database}")
        else:
            cluster.drop_database(database)


# data ------------------------------------------------------------------------------------------


def _members(engine: Engine, rng, ids, x, y, polygons) -> None:
    """20 members per network at addresses inside it, and one coordinator each."""
    from bingeo.matching import AddressPoints

    points = AddressPoints.from_arrays(ids, x, y)
    with engine.connect() as connection:
        network_ids = [r[0] for r in connection.execute(select(NETWORKS.c.id).order_by("id"))]
    members, contacts = [], []
    channels = (["email"], ["sms"], ["email", "sms"], ["voice"])
    for network_id, polygon in zip(network_ids, polygons, strict=True):
        covered = points.covered_by(polygon)
        for i, address_id in enumerate(rng.choice(covered, min(20, len(covered)), replace=False)):
            members.append(
                {
                    "network_id": network_id,
                    "address_id": int(address_id),
                    "name": "m",
                    "email": "m@example.be",
                    "phone": "+32470000000",
                    "language": ("nl", "fr", "de")[i % 3],
                    "channels": channels[i % 4],
                    "consent_at": CONSENT,
                }
            )
        contacts.append(
            {"network_id": network_id, "role": "coordinator", "name": "c", "email": "c@x.be"}
        )
    with engine.begin() as connection:
        connection.execute(insert(Member.__table__), members)
        connection.execute(insert(NetworkContact.__table__), contacts)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE members"))


def _bodies(rnd: random.Random, x, y, count: int) -> list[tuple[dict, dict]]:
    """(area description, request body): circles and drawn polygons around random addresses."""
    bodies = []
    for i in range(count):
        k = rnd.randrange(len(x))
        cx, cy = float(x[k]), float(y[k])
        if i % 3 < 2:
            radius = RADII[i % len(RADII)]
            lon, lat = storage_to_geojson(shapely.Point(cx, cy))["coordinates"]
            target = {"circle": {"lon": lon, "lat": lat, "radius_m": radius}}
            # The centre as the API computes it from lon/lat.
            sx, sy = lonlat_to_storage(lon, lat)
            area = {"type": "circle", "x": sx, "y": sy, "r": radius}
        else:
            n = rnd.randint(6, 40)
            size = rnd.choice((300.0, 800.0, 1500.0, 3000.0))
            angles = sorted(rnd.uniform(0, 2 * np.pi) for _ in range(n))
            reach = [size * rnd.uniform(0.5, 1.0) for _ in angles]
            ring = [
                (cx + r * np.cos(a), cy + r * np.sin(a)) for r, a in zip(reach, angles, strict=True)
            ]
            polygon = shapely.Polygon(ring)
            # As JSON carries it (arrays, not tuples).
            geojson = json.loads(json.dumps(storage_to_geojson(polygon)))
            target = {"area": geojson}
            # The area as the API parses it, so both ways answer for the same polygon.
            stored = geojson_to_storage(geojson)[0]
            area = {"type": "polygon", "wkb": shapely.to_wkb(stored), "size": size}
        body = {"target": target, "messages": {"nl": "Opgelet"}, "mode": "direct"}
        bodies.append((area, body))
    return bodies


# the two ways ----------------------------------------------------------------------------------


def _run_api(url: str, headers: dict, bodies: list, clients: int) -> dict:
    answers: dict[int, dict] = {}
    times = [0.0] * len(bodies)

    def work(part: list[int]) -> None:
        with httpx.Client(timeout=120) as client:
            for i in part:
                started = time.perf_counter()
                response = client.post(url, json=bodies[i][1], headers=headers)
                times[i] = time.perf_counter() - started
                response.raise_for_status()
                data = response.json()
                answers[i] = {
                    "networks": len(data["networks"]),
                    "inside": data["addresses"]["inside_area"],
                    "inside_network": data["addresses"]["inside_area_and_network"],
                    "edge": data["edge"]["total"],
                }

    return _parallel(work, len(bodies), clients, times, answers)


def _run_postgis(engine: Engine, bodies: list, clients: int) -> dict:
    answers: dict[int, dict] = {}
    times = [0.0] * len(bodies)

    def work(part: list[int]) -> None:
        with engine.connect() as connection:
            for i in part:
                area = bodies[i][0]
                started = time.perf_counter()
                answers[i] = _postgis_counts(connection, area)
                times[i] = time.perf_counter() - started

    return _parallel(work, len(bodies), clients, times, answers)


def _postgis_counts(connection, area: dict) -> dict:
    """The same counts as the preview, in one round of plain PostGIS queries."""
    n, a = NETWORKS, ADDRESSES
    if area["type"] == "circle":
        shape = func.ST_SetSRID(func.ST_MakePoint(area["x"], area["y"]), SRID)
        reached = func.ST_DWithin(n.c.geom, shape, area["r"]) & (
            func.ST_Distance(n.c.geom, shape) < area["r"]
        )
        inside = func.ST_DWithin(a.c.geom, shape, area["r"])
        edge = func.ST_DWithin(a.c.geom, shape, area["r"] + 25) & (
            func.abs(func.ST_Distance(a.c.geom, shape) - area["r"]) <= 25
        )
    else:
        shape = func.ST_GeomFromWKB(literal(area["wkb"]), SRID)
        reached = func.ST_Intersects(n.c.geom, shape) & ~func.ST_Touches(n.c.geom, shape)
        inside = func.ST_Covers(shape, a.c.geom)
        edge = func.ST_DWithin(func.ST_Boundary(shape), a.c.geom, 25)
    active = n.c.status == "active"
    networks = select(n.c.id, n.c.geom).where(reached, active).cte("reached")
    in_network = select(networks.c.id).where(func.ST_Covers(networks.c.geom, a.c.geom)).exists()
    row = connection.execute(
        select(
            select(func.count()).select_from(networks).scalar_subquery(),
            select(func.count()).where(inside).scalar_subquery(),
            select(func.count()).where(inside, in_network).scalar_subquery(),
            select(func.count()).where(edge).scalar_subquery(),
        )
    ).one()
    return {"networks": row[0], "inside": row[1], "inside_network": row[2], "edge": row[3]}


# helpers ---------------------------------------------------------------------------------------


def _parallel(work, count: int, clients: int, times: list, answers: dict) -> dict:
    parts = [list(range(count))[c::clients] for c in range(clients)]
    threads = [threading.Thread(target=work, args=(part,)) for part in parts]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"times": times, "answers": answers, "wall_s": wall}


def _serve(database: str, port: int) -> subprocess.Popen:
    """uvicorn with the app, as ``bingeo serve`` runs it, in its own process."""
    env = {**os.environ, "BINGEO_DATABASE_NAME": database}
    code = (
        "import uvicorn; from api.app import create_app; from bingeo.settings import Settings; "
        f"uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, "
        "access_log=False, log_level='warning')"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    sys.exit("the API server did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def _print(results: dict, bodies: list, clients: int) -> None:
    kinds = {
        "circles 200-500 m": [
            i for i, (a, _) in enumerate(bodies) if a["type"] == "circle" and a["r"] <= 500
        ],
        "circles 1-2 km": [
            i for i, (a, _) in enumerate(bodies) if a["type"] == "circle" and 1000 <= a["r"] <= 2000
        ],
        "circles 5 km": [
            i for i, (a, _) in enumerate(bodies) if a["type"] == "circle" and a["r"] >= 5000
        ],
        "drawn polygons": [i for i, (a, _) in enumerate(bodies) if a["type"] == "polygon"],
        "all": list(range(len(bodies))),
    }
    print()
    print(f"{len(bodies)} previews; latency in ms (p50 / p95), throughput in requests/s")
    header = f"{'areas':<20}"
    for key in results:
        header += f" {key:>18}"
    print(header)
    for label, idx in kinds.items():
        line = f"{label + f' ({len(idx)})':<20}"
        for result in results.values():
            values = [result["times"][i] for i in idx]
            line += f" {_ms(values, 50):>8.1f} /{_ms(values, 95):>7.1f}"
        print(line)
    line = f"{'throughput':<20}"
    for result in results.values():
        line += f" {len(bodies) / result['wall_s']:>18.0f}"
    print(line)
    api, postgis = results["api_1"]["answers"], results["postgis_1"]["answers"]
    differ = [i for i in range(len(bodies)) if api[i] != postgis[i]]
    print(f"answers equal between the API and PostGIS: {len(bodies) - len(differ)}/{len(bodies)}")
    for i in differ[:5]:
        print(f"  differs: {bodies[i][0]['type']} api={api[i]} postgis={postgis[i]}")
    sizes = [api[i]["inside"] for i in range(len(bodies))]
    print(
        f"addresses inside per area: median {statistics.median(sizes):,.0f}, max {max(sizes):,}; "
        f"({clients} clients share the machine's cores with the server and PostgreSQL)"
    )


if __name__ == "__main__":
    main()
