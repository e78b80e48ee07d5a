"""The real app under uvicorn in a subprocess, on a free loopback port (for GDAL and browsers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from bingeo.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BINGEO = Path(sys.executable).parent / "bingeo"
APP = (
    "from api.app import create_app; from bingeo.settings import Settings; import uvicorn; "
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, log_level='warning')"
)


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a bingeo process at this run's test database."""
    env = os.environ | {
        "BINGEO_DATABASE_NAME": settings.database_name,
        "BINGEO_DATA_DIR": str(settings.data_dir),
    }
    if settings.database_url:
        env["BINGEO_DATABASE_URL"] = settings.database_url
    return env | extra


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.05)


@contextmanager
def live_server(
    settings: Settings,
    *,
    worker: bool = False,
    start_timeout_s: float = 60,
    serve: Sequence[str] | None = None,
    output: Path | None = None,
    **extra_env: str,
) -> Iterator[str]:
    """Serve the app (and ``bingeo worker`` when asked) until the block ends; yields its URL.

    ``serve``: run ``bingeo serve`` with these options instead of the app alone; ``output``:
    a file for the server's output.
    """
    port = free_port()
    # Links in answers (OGC next pages, which GDAL follows) name this server.
    env = server_env(settings, BINGEO_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", **extra_env)
    if serve is None:
        command = [sys.executable, "-c", APP.format(port=port)]
    else:
        command = [str(BINGEO), "serve", "--port", str(port), *serve]
    log = output.open("w") if output is not None else None
    into = subprocess.STDOUT if log is not None else None  # None: the test's own output
    children = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=into)]
    if worker:
        children.append(
            subprocess.Popen(
                [str(BINGEO), "worker"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert children[0].poll() is None, "the server stopped while starting"
            assert time.monotonic() < deadline, f"the server did not start in {start_timeout_s} s"
            time.sleep(0.2)
        yield base
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
        if log is not None:
            log.close()
