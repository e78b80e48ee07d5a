"""Load test: ``bingeo serve`` under 16 concurrent clients on synthetic national-scale data.

Builds the synthetic data of ``bench_matching`` (addresses clustered in towns, wobbly overlapping
networks), the members of ``bench_alerts`` and the sectors, municipalities and police zones of
``bench_coverage`` in a database of its own in the embedded cluster; gives every network the
municipality and police zone it lies in; matches every address; adds a user and a token of every
role. Then it starts ``bingeo serve`` on a free loopback port and runs concurrent clients (threads
with one HTTP connection each) for a fixed time, mixing:

* ``POST /alerts/preview`` with circles (200 m - 5 km) and drawn polygons anywhere (admin);
* ``GET /coverage`` of one police zone (its analyst) or one municipality (admin);
* ``GET /networks`` (a bbox page), ``GET /networks/{id}`` and OGC
  ``GET /collections/networks/items`` (anonymous, planner, coordinator, analyst).

It prints throughput, p50/p95/p99 per request type and overall, and error counts.

With ``--restart-db`` the PostgreSQL server is stopped in the middle of the run and started again
after ``--down`` seconds: requests must fail fast with 503 ``database_unavailable`` while it is
down, and the service must recover by itself. The embedded cluster is shared by everything on
the machine: use this option sparingly.

    .venv/bin/python bench/load_test.py                      # 500,000 addresses, quick
    .venv/bin/python bench/load_test.py --addresses 5500000 --networks 1200
    .venv/bin/python bench/load_test.py --addresses 5500000 --networks 1200 --restart-db
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import shapely
from sqlalchemy import Engine, func, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_alerts  # noqa: E402 (members and request bodies of the alert benchmark)
import bench_coverage  # noqa: E402 (synthetic sectors, municipalities and zones)
import bench_matching as generator  # noqa: E402 (addresses and networks)

from bingeo.db import migrate  # noqa: E402
from bingeo.db.cluster import Cluster  # noqa: E402
from bingeo.db.engine import make_engine  # noqa: E402
from bingeo.db.models import (  # noqa: E402
    AreaLevel,
    Network,
    PoliceZoneMunicipality,
    ReferenceArea,
    Role,
    User,
)
from bingeo.geometry import storage_to_geojson  # noqa: E402
from bingeo.services.coverage import refresh_address_areas  # noqa: E402
from bingeo.services.matching import rematch_all  # noqa: E402
from bingeo.services.users import add_user, create_token  # noqa: E402
from bingeo.settings import Settings  # noqa: E402

KINDS = ("preview", "coverage", "networks", "network", "ogc_items")
# Share of each request type in the mix.
WEIGHTS = (0.4, 0.15, 0.15, 0.2, 0.1)


@dataclass
class Sample:
    """One request: its type, when it started (s since the start), latency, status, code, and
    the server's own time (its ``Server-Timing`` header, s)."""

    kind: str
    start: float
    latency: float
    status: int
    code: str | None = None
    detail: str | None = None
    server: float | None = None


@dataclass
class Plan:
    """What the clients ask for: bodies, scopes, ids, boxes and the tokens of each role."""

    previews: list[dict]
    zone: str
    municipality: str
    network_ids: list[int]
    boxes: list[str]
    tokens: dict[str, str] = field(default_factory=dict)


def main() -> None:
    """Build the data, serve the API, run the load (and the restart), print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    generator.add_data_options(parser, addresses=500_000, areas=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a client waits between its requests (random, exponential), as a "
        "person does; 0 (default) sends the next request at once, which saturates the server",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes of bingeo serve")
    parser.add_argument("--restart-db", action="store_true", help="restart PostgreSQL mid-run")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the server stays down")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--database", help="reuse a database kept by an earlier run with the same data options"
    )
    args = parser.parse_args()

    database = args.database or f"bingeo_load_{os.getpid()}"
    args.keep = args.keep or bool(args.database)
    settings = Settings(database_name=database)
    if not settings.embedded:
        sys.exit("this load test creates its own database in the embedded cluster")
    cluster = Cluster(settings)
    cluster.ensure_database(database)
    engine = make_engine(settings, owner=True)
    server = None
    log = Path(tempfile.mkstemp(prefix="bingeo-load-", suffix=".log")[1])
    try:
        migrate.upgrade(engine)
        plan = _reuse(engine, args) if args.database else _build(engine, args)
        engine.dispose()
        server, base = _serve(database, log, args.workers)
        _warm_up(base, plan)
        restart: dict[str, float] = {}
        restarter = None
        if args.restart_db:
            restarter = threading.Thread(
                target=_restart, args=(cluster, args.duration / 2, args.down, restart)
            )
        samples = _load(base, plan, args, restarter)
        _report(samples, args, restart)
        _server_errors(log)
        log.unlink()
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        engine.dispose()
        if args.keep:
            print(f"kept database {database}")
        else:
            Cluster(settings).drop_database(database)


# data ------------------------------------------------------------------------------------------


def _build(engine: Engine, args: argparse.Namespace) -> Plan:
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    ids, x, y, town_of, towns = generator._addresses(rng, args.addresses, args.towns)
    polygons = generator._networks(rng, x, y, towns, args.networks)
    generator._store_addresses(engine, ids, x, y, town_of)
    generator._store_networks(engine, polygons)
    bench_alerts._members(engine, rng, ids, x, y, polygons)
    zone = bench_coverage._store_areas(engine, rng, towns, args)
    _locate_networks(engine)
    stats = rematch_all(engine)
    refresh_address_areas(engine, AreaLevel.sector)
    print(
        f"data: {args.addresses:,} addresses, {len(polygons):,} networks, {stats.pairs:,} "
        f"address-network pairs; built in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    with engine.connect() as connection:
        municipality = connection.scalar(
            select(PoliceZoneMunicipality.nis_code)
            .where(PoliceZoneMunicipality.police_zone_code == zone)
            .order_by(PoliceZoneMunicipality.nis_code)
            .limit(1)
        )
    plan = _plan(engine, args, x, y, zone, municipality)
    _users(engine, plan)
    return plan


def _reuse(engine: Engine, args: argparse.Namespace) -> Plan:
    """The plan for a kept database: the same addresses again (cheap), new tokens."""
    rng = np.random.default_rng(args.seed)
    _, x, y, _, _ = generator._addresses(rng, args.addresses, args.towns)
    with engine.connect() as connection:
        zone = connection.scalar(select(User.police_zone_code).where(User.name == "load_analyst"))
        municipality = connection.scalar(select(User.nis_code).where(User.name == "load_planner"))
    if zone is None:
        sys.exit(f"{args.database} is not a database kept by this load test")
    plan = _plan(engine, args, x, y, zone, municipality)
    for name in ("admin", "analyst", "officer", "planner", "coordinator"):
        plan.tokens[name] = create_token(engine, f"load_{name}", label="load test")[1]
    print(f"reusing {args.database}", flush=True)
    return plan


def _plan(
    engine: Engine, args: argparse.Namespace, x: np.ndarray, y: np.ndarray, zone: str, nis: str
) -> Plan:
    previews = [body for _, body in bench_alerts._bodies(random.Random(args.seed), x, y, 2000)]
    with engine.connect() as connection:
        network_ids = list(connection.scalars(select(Network.id).order_by(Network.id)))
    boxes = _boxes(x, y, np.random.default_rng(args.seed + 1))
    return Plan(previews, zone, nis, network_ids, boxes)


def _locate_networks(engine: Engine) -> None:
    """Give every network the municipality and police zone its inner point lies in."""
    inner = func.ST_PointOnSurface(Network.geom)
    for column, level in (
        (Network.nis_code, AreaLevel.municipality),
        (Network.police_zone_code, AreaLevel.police_zone),
    ):
        found = (
            select(ReferenceArea.code)
            .where(ReferenceArea.level == level, func.ST_Covers(ReferenceArea.geom, inner))
            .limit(1)
            .scalar_subquery()
        )
        with engine.begin() as connection:
            connection.execute(update(Network).values({column.key: found}))


def _boxes(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> list[str]:
    """``bbox`` parameters (lon/lat) of 2-10 km around random addresses, as a map view asks."""
    boxes = []
    for k in rng.integers(0, len(x), 200):
        half = float(rng.uniform(1000, 5000))
        box = shapely.box(x[k] - half, y[k] - half, x[k] + half, y[k] + half)
        ring = storage_to_geojson(box)["coordinates"][0]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        boxes.append(f"{min(lons):.5f},{min(lats):.5f},{max(lons):.5f},{max(lats):.5f}")
    return boxes


def _users(engine: Engine, plan: Plan) -> None:
    """A user and a token of every role, scoped to the plan's zone, municipality and a network."""
    scopes = {
        "admin": {"role": Role.admin},
        "analyst": {"role": Role.police_analyst, "police_zone_code": plan.zone},
        "officer": {"role": Role.police_officer, "police_zone_code": plan.zone},
        "planner": {"role": Role.municipality_planner, "nis_code": plan.municipality},
        "coordinator": {"role": Role.coordinator, "network_id": plan.network_ids[0]},
    }
    for name, scope in scopes.items():
        add_user(engine, f"load_{name}", **scope)
        plan.tokens[name] = create_token(engine, f"load_{name}", label="load test")[1]


# server and clients ----------------------------------------------------------------------------


def _serve(database: str, log: Path, workers: int) -> tuple[subprocess.Popen, str]:
    """``bingeo serve`` with ``workers`` processes on a free loopback port, logging to ``log``."""
    port = bench_alerts._free_port()
    env = {**os.environ, "BINGEO_DATABASE_NAME": database}
    bingeo = Path(sys.executable).with_name("bingeo")
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(bingeo), "serve", "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", str(workers)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.kill()
    sys.exit(f"bingeo serve did not start; see {log}")


def _request(client: httpx.Client, plan: Plan, kind: str, rnd: random.Random) -> httpx.Response:
    """One request of ``kind`` with the role that would make it."""
    tokens = plan.tokens

    def auth(role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"} if role else {}

    if kind == "preview":
        return client.post("/alerts/preview", json=rnd.choice(plan.previews), headers=auth("admin"))
    if kind == "coverage":
        if rnd.random() < 0.5:
            return client.get("/coverage", params={"zone": plan.zone}, headers=auth("analyst"))
        params = {"municipality": plan.municipality}
        return client.get("/coverage", params=params, headers=auth("admin"))
    role = rnd.choice([None, "planner", "coordinator", "analyst"])
    if kind == "networks":
        params = {"bbox": rnd.choice(plan.boxes), "limit": 50}
        return client.get("/networks", params=params, headers=auth(role))
    if kind == "network":
        return client.get(f"/networks/{rnd.choice(plan.network_ids)}", headers=auth(role))
    params = {"bbox": rnd.choice(plan.boxes), "limit": 20}
    return client.get("/collections/networks/items", params=params, headers=auth(role))


def _warm_up(base: str, plan: Plan) -> None:
    """One request of each type first: the read models load on the first use."""
    rnd = random.Random(0)
    with httpx.Client(base_url=base, timeout=300) as client:
        for kind in KINDS:
            started = time.perf_counter()
            response = _request(client, plan, kind, rnd)
            if response.status_code >= 300:
                sys.exit(f"warm-up {kind}: {response.status_code} {response.text[:300]}")
            print(f"warm-up {kind}: {time.perf_counter() - started:.2f} s", flush=True)


def _load(
    base: str, plan: Plan, args: argparse.Namespace, restarter: threading.Thread | None
) -> list[Sample]:
    """``args.clients`` threads sending the mix for ``args.duration`` s; every request's sample."""
    samples: list[Sample] = []
    lock = threading.Lock()
    origin = time.perf_counter()
    end = origin + args.duration

    def client_loop(number: int) -> None:
        rnd = random.Random(number)
        mine = []
        # A generous timeout: a hang shows as a long latency (or a timeout), not as a stall.
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.perf_counter() < end:
                kind = rnd.choices(KINDS, WEIGHTS)[0]
                started = time.perf_counter()
                detail = server = None
                try:
                    response = _request(client, plan, kind, rnd)
                    status, code = response.status_code, None
                    server = _server_time(response)
                    if status >= 400:
                        body = response.json()
                        code, detail = body.get("code"), body.get("detail")
                except httpx.HTTPError as exc:
                    status, code, detail = 0, type(exc).__name__, str(exc)
                latency = time.perf_counter() - started
                sample = Sample(kind, started - origin, latency, status, code, detail, server)
                mine.append(sample)
                if args.think:
                    pause = rnd.expovariate(1 / args.think)
                    time.sleep(max(0.0, min(pause, end - time.perf_counter())))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    if restarter is not None:
        restarter.start()
    for thread in threads:
        thread.join()
    if restarter is not None:
        restarter.join()
    return samples


def _restart(cluster: Cluster, after: float, down: float, times: dict[str, float]) -> None:
    """Stop the PostgreSQL server ``after`` seconds into the run, start it ``down`` s later."""
    origin = time.perf_counter()
    time.sleep(after)
    times["stop_called"] = time.perf_counter() - origin
    cluster.stop()
    times["stopped"] = time.perf_counter() - origin
    time.sleep(down)
    times["start_called"] = time.perf_counter() - origin
    cluster.start()
    times["started"] = time.perf_counter() - origin


# report ----------------------------------------------------------------------------------------


def _report(samples: list[Sample], args: argparse.Namespace, restart: dict[str, float]) -> None:
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
    window = (restart.get("stop_called", 1e9), restart.get("started", -1.0) + 0.0)
    normal = [s for s in samples if not _in_window(s, window)]
    print()
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"{len(samples):,} requests from {args.clients} clients in {args.duration:.0f} s, think "
        f"time {args.think:g} s, {args.workers} server process(es) "
        f"({args.addresses:,} addresses, {args.networks:,} networks; server, PostgreSQL and "
        "clients share the machine's cores)"
    )
    print(
        f"{'request':<34} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>7}   server p50 / p95 / p99 ms"
    )
    labels = {
        "preview": "POST /alerts/preview",
        "coverage": "GET /coverage (zone, municipality)",
        "networks": "GET /networks?bbox",
        "network": "GET /networks/{id}",
        "ogc_items": "GET /collections/networks/items",
    }
    for kind in KINDS:
        _row(labels[kind], [s for s in normal if s.kind == kind], args.duration)
    _row("all", normal, args.duration)
    if args.restart_db:
        print("(the rows above leave out the requests made while the database was restarting)")
        _restart_report(samples, restart)
    else:
        codes = Counter((s.status, s.code) for s in samples if s.status >= 400 or s.status == 0)
        print(f"errors: {dict(codes) if codes else 'none'}")


def _in_window(sample: Sample, window: tuple[float, float]) -> bool:
    return window[0] <= sample.start + sample.latency and sample.start <= window[1]


def _row(label: str, samples: list[Sample], duration: float) -> None:
    if not samples:
        print(f"{label:<34} {0:>7}")
        return
    ms = np.array([s.latency for s in samples]) * 1000
    errors = sum(1 for s in samples if s.status >= 400 or s.status == 0)
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    # The server's own time (from accepting the request to its answer's headers): the rest is
    # spent in queues, on the wire and in the client.
    server = np.array([s.server for s in samples if s.server is not None]) * 1000
    own = "/".join(f"{v:.1f}" for v in np.percentile(server, [50, 95, 99])) if len(server) else "-"
    print(
        f"{label:<34} {len(samples):>7,} {len(samples) / duration:>7.1f} {p50:>8.1f} "
        f"{p95:>8.1f} {p99:>8.1f} {ms.max():>8.0f} {errors:>7}   {own}"
    )


def _server_time(response: httpx.Response) -> float | None:
    """The server's time in seconds from its ``Server-Timing: app;dur=<ms>`` header."""
    for part in response.headers.get("server-timing", "").split(";"):
        if part.startswith("dur="):
            return float(part[4:]) / 1000
    return None


def _restart_report(samples: list[Sample], restart: dict[str, float]) -> None:
    """What happened while the database was down, and how long the service took to recover."""
    stop, stopped = restart["stop_called"], restart["stopped"]
    start, started = restart["start_called"], restart["started"]
    print(
        f"\ndatabase restart: stop called at {stop:.1f} s (down after {stopped - stop:.2f} s), "
        f"start called at {start:.1f} s, accepting connections at {started:.1f} s"
    )
    during = [s for s in samples if stop <= s.start + s.latency and s.start <= started]
    unavailable = [s for s in during if s.status == 503 and s.code == "database_unavailable"]
    other = Counter((s.status, s.code) for s in during if s.status >= 400 or s.status == 0)
    other.pop((503, "database_unavailable"), None)
    ok = [s for s in during if s.status < 400 and s.status != 0]
    if unavailable:
        ms = np.array([s.latency for s in unavailable]) * 1000
        print(
            f"  503 database_unavailable: {len(unavailable):,} answers, latency p50 "
            f"{np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.0f} ms"
        )
    print(f"  successful requests in the window: {len(ok):,}; other errors: {dict(other) or 0}")
    after = sorted((s for s in samples if s.start >= started), key=lambda s: s.start)
    first_ok = {}
    for sample in after:
        if sample.status < 400 and sample.status != 0:
            first_ok.setdefault(sample.kind, sample.start + sample.latency)
    if len(first_ok) == len(KINDS):
        recovery = max(first_ok.values()) - started
        print(
            f"  recovered by itself: every request type answered again within {recovery:.2f} s "
            "of the server accepting connections"
        )
    else:
        print(f"  NOT recovered for: {sorted(set(KINDS) - set(first_ok))}")
    failures = [s for s in after if s.status >= 400 or s.status == 0]
    if failures:
        last = max(s.start + s.latency for s in failures) - started
        kinds = Counter((s.status, s.code, s.detail) for s in failures)
        print(f"  errors after the server accepted connections, the last {last:.2f} s after:")
        for (status, code, detail), count in kinds.most_common(5):
            print(f"    {count:>5} x {status} {code}: {detail}")
    else:
        print("  no error after the server accepted connections")


def _server_errors(log: Path) -> None:
    """Count the server's logged internal errors (5xx other than 503)."""
    lines = log.read_text(errors="replace").splitlines()
    internal = [line for line in lines if "-> 500" in line]
    print(f"server log: {len(internal)} internal errors (500)")
    for line in internal[:5]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
