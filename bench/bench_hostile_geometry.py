"""Hostile geometry: self-crossing stars sent to ``bingeo serve`` while /healthz is polled.

A star of n points on a circle, each joined to the one about n/2 further on, crosses itself
about n²/4 times: before issue 14, 100 points kept the server busy for minutes and 1,000 made it
unresponsive. This script builds a small database of its own in the embedded cluster (two
networks, an officer and a planner with tokens), starts ``bingeo serve`` on a free loopback port
and sends stars of 20 to 20,001 points to the routes that take a geometry, anonymously and with
the role of the route, one after the other, while another client polls ``/healthz`` every 20 ms
and a third thread samples the server's resident memory (VmRSS of the server process and its
children, from /proc). It prints every answer's status and time, and the figures next to the goal
of the issue: every star answered within 1 s with a 4xx, /healthz within 100 ms throughout, the
server's memory grown by under 200 MB.

    .venv/bin/python bench/bench_hostile_geometry.py
    .venv/bin/python bench/bench_hostile_geometry.py --sizes 21 101 1001 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

import load_test  # noqa: E402 (bingeo serve on a free port)
from api_helpers import load_places, star  # noqa: E402 (the test world's places, stars)

from bingeo.access import Actor, Principal  # noqa: E402
from bingeo.db import migrate  # noqa: E402
from bingeo.db.cluster import Cluster  # noqa: E402
from bingeo.db.engine import make_engine  # noqa: E402
from bingeo.db.models import NetworkKind, Role  # noqa: E402
from bingeo.geometry import geojson_to_storage  # noqa: E402
from bingeo.services import networks as network_service  # noqa: E402
from bingeo.services.users import add_user, create_token  # noqa: E402
from bingeo.settings import Settings  # noqa: E402

CENTRE = (4.76, 50.83)  # Bierbeek
NIS, ZONE = "24011", "5388"
SIZES = [20, 21, 51, 101, 201, 1001, 5001, 10001, 19999, 20001]
GOAL_ANSWER_S = 1.0
GOAL_HEALTH_S = 0.1
GOAL_RSS_MB = 200.0
MESSAGES = {"nl": "Let op", "fr": "Attention"}


def requests(geometry: dict) -> list[tuple[str, str, str, dict]]:
    """(label, role's user, path, keyword arguments) of each route that takes a geometry."""
    feature = {"type": "Feature", "properties": {}, "geometry": geometry}
    upload = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    return [
        (
            "POST /alerts/preview",
            "officer",
            "/alerts/preview",
            {"json": {"target": {"area": geometry}, "messages": MESSAGES}},
        ),
        ("POST /planning/validate", "planner", "/planning/validate", {"json": geometry}),
        (
            "POST /planning/validate (file)",
            "planner",
            "/planning/validate",
            {"files": {"file": ("area.geojson", upload, "application/geo+json")}},
        ),
        (
            "POST /networks",
            "planner",
            "/networks",
            {"json": {"name": "Ster", "kind": "BIN", "geometry": geometry}},
        ),
    ]


def main() -> None:
    """Build the small database, serve the API, send the stars, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="points per star")
    parser.add_argument("--rounds", type=int, default=1, help="times every request is sent")
    args = parser.parse_args()

    database = f"bingeo_hostile_{os.getpid()}"
    settings = Settings(database_name=database)
    if not settings.embedded:
        sys.exit("this benchmark creates its own database in the embedded cluster")
    cluster = Cluster(settings)
    cluster.ensure_database(database)
    engine = make_engine(settings, owner=True)
    server = None
    log = Path(tempfile.mkstemp(prefix="bingeo-hostile-", suffix=".log")[1])
    try:
        migrate.upgrade(engine)
        tokens = _build(engine)
        engine.dispose()
        server, base = load_test._serve(database, log, workers=1)
        _run(base, server.pid, tokens, args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        engine.dispose()
        cluster.drop_database(database)
        log.unlink(missing_ok=True)


def _build(engine) -> dict[str, str]:
    """Two networks and an officer and a planner with tokens; their tokens."""
    admin = Actor(principal=Principal(name="setup", role=Role.admin))
    load_places(engine)  # municipality NIS in zone ZONE: where the networks lie
    for name, dx in (("BIN A", 0.0), ("BIN B", 0.02)):
        lon, lat = CENTRE[0] + dx, CENTRE[1]
        ring = [[lon - 0.004, lat - 0.004], [lon + 0.004, lat - 0.004], [lon + 0.004, lat + 0.004]]
        area = {"type": "Polygon", "coordinates": [[*ring, [lon - 0.004, lat + 0.004], ring[0]]]}
        geometry, _ = geojson_to_storage(area)
        network_service.create_network(
            engine,
            admin,
            name=name,
            kind=NetworkKind.BIN,
            geometry=geometry,
        )
    add_user(engine, "officer", Role.police_officer, police_zone_code=ZONE)
    add_user(engine, "planner", Role.municipality_planner, nis_code=NIS)
    return {name: create_token(engine, name, label="bench")[1] for name in ("officer", "planner")}


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (MB), from /proc."""
    total = 0.0
    for process in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found + [grandchild for child in found for grandchild in _children(child)]


def _run(base: str, pid: int, tokens: dict[str, str], args: argparse.Namespace) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(3):  # the first requests load the read models
            client.post(
                "/alerts/preview",
                json={
                    "target": {"circle": {"lon": CENTRE[0], "lat": CENTRE[1], "radius_m": 300}},
                    "messages": MESSAGES,
                },
                headers={"Authorization": f"Bearer {tokens['officer']}"},
            )
        # Every request built (its body encoded) before the clock runs.
        planned = []
        for size in args.sizes:
            for label, user, path, kwargs in requests(star(size)):
                for who in ("anonymous", user):
                    headers = {"Authorization": f"Bearer {tokens[who]}"} if who in tokens else {}
                    request = client.build_request("POST", path, headers=headers, **kwargs)
                    request.read()
                    planned += [(size, label, who, request)] * args.rounds
    time.sleep(1.0)
    baseline = _rss_mb(pid)
    rss: list[float] = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss.append(_rss_mb(pid))
            done.wait(0.05)

    # /healthz is polled from a process of its own, so that this one's work does not delay it;
    # first alone for 3 s (on a shared machine its latency is not only the server's).
    context = multiprocessing.get_context("spawn")
    ready, stop, results = context.Event(), context.Event(), context.Queue()
    poller = context.Process(target=_poll, args=(base, ready, stop, results))
    poller.start()
    ready.wait(120)
    time.sleep(3.0)
    attack = time.monotonic()
    sampler = threading.Thread(target=sample)
    sampler.start()
    answers = []
    try:
        with httpx.Client(base_url=base, timeout=600) as client:
            for size, label, who, request in planned:
                started = time.perf_counter()
                response = client.send(request)
                elapsed = time.perf_counter() - started
                answers.append((size, label, who, response.status_code, _code(response), elapsed))
    finally:
        ended = time.monotonic()
        done.set()
        sampler.join()
        stop.set()
        health = results.get(timeout=60)
        poller.join()
    quiet = [h for h in health if h[0] < attack]
    during = [h for h in health if attack <= h[0] <= ended]
    _report(answers, during, quiet, rss, baseline)


def _poll(base: str, ready, stop, results) -> None:
    """GET /healthz every 20 ms until ``stop``; (start, latency s, status) of each, to
    ``results``."""
    health = []
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = client.get("/healthz").status_code
            except httpx.HTTPError:
                status = 0
            health.append((started, time.monotonic() - started, status))
            ready.set()
            stop.wait(0.02)
    results.put(health)


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


def _report(answers, health, quiet, rss, baseline) -> None:
    print(f"{'points':>7}  {'route':<30} {'caller':<10} {'status':>6}  {'code':<18} {'ms':>8}")
    for size, label, who, status, code, elapsed in answers:
        print(f"{size:>7}  {label:<30} {who:<10} {status:>6}  {code:<18} {elapsed * 1000:>8.1f}")
    times = np.array([a[5] for a in answers])
    statuses = [a[3] for a in answers]
    client_errors = sum(400 <= s < 500 for s in statuses)
    latency = np.array([h[1] for h in health])
    failed = sum(h[2] != 200 for h in health)
    growth = max(rss) - baseline
    print()
    print(f"{'figure':<42} {'measured':>14}   goal")
    print(f"{'star answers (all 4xx?)':<42} {client_errors:>8} / {len(statuses):<4}   all 4xx")
    print(f"{'slowest star answer':<42} {times.max() * 1000:>11.1f} ms   < 1000 ms")
    print(f"{'median star answer':<42} {np.median(times) * 1000:>11.1f} ms")
    p50, p99 = np.percentile(latency, [50, 99]) * 1000
    quiet = np.array([h[1] for h in quiet])
    q50, q99 = np.percentile(quiet, [50, 99]) * 1000
    slowest = quiet.max() * 1000
    print(
        f"{'/healthz before the attack p50 / p99 / max':<42} "
        f"{q50:>6.1f} / {q99:.1f} / {slowest:.1f} ms"
    )
    print(f"{'/healthz polls during the attack (failed)':<42} {len(latency):>8} ({failed})")
    print(f"{'/healthz during the attack p50 / p99':<42} {p50:>6.1f} / {p99:.1f} ms")
    print(
        f"{'/healthz during the attack, slowest':<42} {latency.max() * 1000:>11.1f} ms   < 100 ms"
    )
    print(f"{'server RSS before / peak':<42} {baseline:>6.0f} / {max(rss):.0f} MB")
    print(f"{'server RSS growth':<42} {growth:>11.1f} MB   < 200 MB")
    met = (
        client_errors == len(statuses)
        and times.max() < GOAL_ANSWER_S
        and latency.max() < GOAL_HEALTH_S
        and failed == 0
        and growth < GOAL_RSS_MB
    )
    print(f"goal met: {'yes' if met else 'no'}")


if __name__ == "__main__":
    main()
