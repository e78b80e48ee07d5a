"""The real app under uvicorn in a subprocess, on a free loopback port (for GDAL and browsers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bingeo.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
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


@contextmanager
def live_server(
    settings: Settings, *, worker: bool = False, start_timeout_s: float = 60, **extra_env: str
) -> Iterator[str]:
    """Serve the app (and ``bingeo worker`` when asked) until the block ends; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = server_env(settings, **extra_env)
    children = [subprocess.Popen([sys.executable, "-c", APP.format(port=port)], cwd=ROOT, env=env)]
    if worker:
        children.append(
            subprocess.Popen(
                [str(Path(sys.executable).parent / "bingeo"), "worker"],
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
            child.wait(timeout=10)
