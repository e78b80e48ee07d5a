"""The embedded cluster, in a temporary data folder of its own next to the running one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import column, create_engine, func, select, table

from bingeo.db.cluster import APP_ROLE, PORT, Cluster
from bingeo.db.engine import make_engine
from bingeo.settings import Settings

DATABASE = "bingeo_cluster_test"


@pytest.fixture(scope="module")
def cluster(settings: Settings) -> Iterator[Cluster]:
    """A cluster in a fresh folder that the server user can reach; stopped and deleted after."""
    # The server runs as an unprivileged user: the folder and its parents must be traversable.
    root = Path(tempfile.mkdtemp(prefix="bingeo-cluster-test-"))
    root.chmod(0o755)
    own = Cluster(
        settings.model_copy(update={"data_dir": root / "data", "database_name": DATABASE})
    )
    yield own
    try:
        own.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_until_gone(pid: int, timeout_s: float = 20.0) -> None:
    """Wait until ``pid`` no longer exists, not even as a zombie that its parent has not reaped."""
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"process {pid} still exists"
        time.sleep(0.1)


def catalog(cluster: Cluster, database: str, name: str, column_name: str) -> set[str]:
    """One column of a PostgreSQL catalog table of ``database`` in ``cluster``."""
    engine = create_engine(cluster.url(database))
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(column(column_name)).select_from(table(name))))
    finally:
        engine.dispose()


def usable(cluster: Cluster) -> bool:
    """A query through bingeo's own engine answers, PostGIS included."""
    engine = make_engine(cluster.settings, start=False)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.postgis_lib_version())).scalar_one() > ""
    finally:
        engine.dispose()


def test_start_creates_the_cluster_and_database(cluster: Cluster, settings: Settings) -> None:
    assert not cluster.status().initialised
    status = cluster.start()
    assert status.initialised and status.running and status.pid
    assert {"postgis", "pg_trgm"} <= catalog(cluster, DATABASE, "pg_extension", "extname")
    # bingeo's engine logs in as the application's role, which is no superuser.
    app = make_engine(cluster.settings, start=False)
    try:
        with app.connect() as connection:
            me = column("rolname") == func.current_user()
            rights = select(column("rolsuper"), column("rolcreaterole"), column("rolcreatedb"))
            role = connection.execute(rights.select_from(table("pg_roles")).where(me)).one()
            assert connection.execute(select(func.current_user())).scalar_one() == APP_ROLE
    finally:
        app.dispose()
    assert tuple(role) == (False, False, False)
    assert usable(cluster)
    # Its own socket in its own folder, on the standard port: it runs beside the main cluster.
    assert (cluster.socket_dir / f".s.PGSQL.{PORT}").exists()
    assert cluster.socket_dir.is_relative_to(cluster.root)
    main = Cluster(settings)
    assert main.socket_dir != cluster.socket_dir
    assert main.status().running and main.status().pid != status.pid


def test_start_twice_is_harmless(cluster: Cluster) -> None:
    first = cluster.start()
    second = cluster.start()
    assert second.running and second.pid == first.pid
    assert cluster.status() == second


def test_stop_then_status(cluster: Cluster) -> None:
    pid = cluster.start().pid
    stopped = cluster.stop()
    assert stopped.initialised and not stopped.running and stopped.pid is None
    wait_until_gone(pid)  # the pid file goes a moment before the process
    assert cluster.stop() == stopped  # stopping a stopped cluster is harmless
    restarted = cluster.start()
    assert restarted.running and usable(cluster)


def test_start_after_the_postmaster_was_killed(cluster: Cluster) -> None:
    pid = cluster.start().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    assert (cluster.pgdata / "postmaster.pid").exists()  # the stale file stays behind
    assert not cluster.status().running
    status = cluster.start()
    assert status.running and status.pid != pid
    assert usable(cluster)


def test_pid_file_naming_an_unrelated_live_process(cluster: Cluster) -> None:
    cluster.stop()
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        # After a crash and a reboot both lock files remain and their pid may be reused.
        pid_file = cluster.pgdata / "postmaster.pid"
        pid_file.write_text(f"{unrelated.pid}\n{cluster.pgdata}\n")
        socket_lock = cluster.socket_dir / f".s.PGSQL.{PORT}.lock"
        socket_lock.write_text(f"{unrelated.pid}\n{cluster.pgdata}\n")
        assert not cluster.status().running
        status = cluster.start()
        assert status.running and status.pid != unrelated.pid
        assert unrelated.poll() is None  # the unrelated process is left alone
        assert usable(cluster)
    finally:
        unrelated.kill()
        unrelated.wait()


def test_ensure_and_drop_database(cluster: Cluster) -> None:
    cluster.start()
    cluster.ensure_database("bingeo_cluster_extra")
    cluster.ensure_database("bingeo_cluster_extra")  # idempotent
    assert {"bingeo_cluster_extra", DATABASE} <= databases(cluster)
    cluster.drop_database("bingeo_cluster_extra")
    assert "bingeo_cluster_extra" not in databases(cluster)


def databases(cluster: Cluster) -> set[str]:
    return catalog(cluster, "postgres", "pg_database", "datname")
