"""Slow clients: how many connections that trickle their request does ``bingeo serve`` keep open?

Starts ``bingeo serve`` on a free loopback port (on a database of its own in the embedded
cluster, dropped at the end; or uses ``--url``), then opens ``--connections`` sockets that each
send the start of a request and then one more byte every ``--every`` seconds: the rest of the
headers (``--mode headers``, slowloris) or a declared body (``--mode body``). Every second it
counts the connections the server still keeps open, and times ``GET /healthz`` on a fresh
connection: the server must close the slow ones within its header / body timeout and stay
responsive meanwhile.

    .venv/bin/python bench/slow_clients.py --connections 300 --hold 40
    .venv/bin/python bench/slow_clients.py --connections 300 --hold 90 --mode body
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
BINGEO = Path(sys.executable).with_name("bingeo")
HEADER_TRICKLE = b"X-Slow: " + b"a" * 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--hold", type=float, default=40.0, help="Seconds to keep trickling.")
    parser.add_argument("--every", type=float, default=1.0, help="Seconds between bytes.")
    parser.add_argument("--mode", choices=("headers", "body"), default="headers")
    parser.add_argument("--url", help="A running server instead of a new one.")
    args = parser.parse_args()
    if args.url:
        run(args, args.url)
        return
    from bingeo.db.cluster import Cluster
    from bingeo.settings import Settings

    database = f"bingeo_slow_{os.getpid()}"
    settings = Settings(database_name=database)
    cluster = Cluster(settings)
    cluster.start()
    cluster.ensure_database(database)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"BINGEO_DATABASE_NAME": database}
    server = subprocess.Popen(
        [str(BINGEO), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        run(args, url)
    finally:
        server.terminate()
        server.wait(timeout=30)
        cluster.drop_database(database)


def run(args: argparse.Namespace, url: str) -> None:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    if args.mode == "headers":
        start = b"GET /healthz HTTP/1.1\r\nHost: slow\r\n"
        trickle = HEADER_TRICKLE
    else:
        start = (
            b"POST /auth/login HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        trickle = b"{" + b" " * 99_999
    selector = selectors.DefaultSelector()
    sockets: dict[socket.socket, int] = {}
    for _ in range(args.connections):
        conn = socket.create_connection(address, timeout=5)
        conn.setblocking(False)
        conn.sendall(start)
        sockets[conn] = 0
        selector.register(conn, selectors.EVENT_READ)
    began = time.monotonic()
    closed_at: list[float] = []
    answers: dict[bytes, int] = {}
    print(f"{args.connections} connections trickling {args.mode} to {url}, 1 byte / {args.every} s")
    print(" t (s)  open  closed  healthz (ms)")
    next_report = 0.0
    while time.monotonic() - began < args.hold and sockets:
        for key, _ in selector.select(timeout=0):
            conn = key.fileobj
            try:
                data = conn.recv(4096)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if data:
                status = data.split(b"\r\n", 1)[0]
                answers[status] = answers.get(status, 0) + 1
            _close(conn, selector, sockets, closed_at, began)
        for conn, sent in list(sockets.items()):
            try:
                conn.send(trickle[sent : sent + 1])
                sockets[conn] = sent + 1
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                _close(conn, selector, sockets, closed_at, began)
        elapsed = time.monotonic() - began
        if elapsed >= next_report:
            started = time.perf_counter()
            try:
                ok = httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            except httpx.TransportError:
                ok = False
            took = (time.perf_counter() - started) * 1000
            shown = f"{took:.1f}" if ok else "failed"
            print(f"{elapsed:6.1f}  {len(sockets):4d}  {len(closed_at):6d}  {shown}")
            next_report += 5.0
        time.sleep(args.every)
    for conn in list(sockets):
        _close(conn, selector, sockets, [], began)
    if closed_at:
        closed_at.sort()
        print(
            f"closed by the server: {len(closed_at)} of {args.connections}, after "
            f"{closed_at[0]:.1f}-{closed_at[-1]:.1f} s; answers {answers or 'none'}"
        )
    else:
        print(f"closed by the server: none of {args.connections} in {args.hold:.0f} s")


def _close(conn, selector, sockets, closed_at, began) -> None:
    selector.unregister(conn)
    sockets.pop(conn, None)
    conn.close()
    closed_at.append(time.monotonic() - began)


if __name__ == "__main__":
    main()
