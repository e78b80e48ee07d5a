"""Faults: the database going down under the API, a read-only database and a full disk in imports.

Every test runs against a cluster of its own in a temporary folder (never the shared one), so
that stopping it, making it read-only or filling its disk disturbs no one else.

The dispatcher killed during a send is tested in tests/test_alerts.py
(``test_worker_killed_mid_send_delivers_exactly_once``): nothing lost, nothing doubled.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from api_helpers import assert_error, bearer, square
from fastapi.testclient import TestClient
from live_server import wait_until
from psycopg import sql
from sqlalchemy import Engine, func, select, text

from api.app import create_app
from bingeo.db import migrate
from bingeo.db.cluster import Cluster
from bingeo.db.engine import make_engine
from bingeo.db.models import Address, AreaLevel, ReferenceArea, Role
from bingeo.errors import DatabaseFull, DatabaseReadOnly
from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.users import add_user, create_token
from bingeo.settings import Settings

DATABASE = "bingeo_faults"
# A failing request must answer within this many seconds, not hang.
FAST_S = 2.5


@pytest.fixture(scope="module")
def own(settings: Settings) -> Iterator[Cluster]:
    """A running cluster in a fresh temporary folder; stopped and deleted after the module."""
    root = Path(tempfile.mkdtemp(prefix="bingeo-faults-"))
    root.chmod(0o755)  # the server runs as an unprivileged user that must reach the folder
    cluster = Cluster(
        settings.model_copy(update={"data_dir": root / "data", "database_name": DATABASE})
    )
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def database(cluster: Cluster, name: str) -> Engine:
    """A new migrated database ``name`` of ``cluster`` and bingeo's engine on it."""
    cluster.ensure_database(name)
    engine = make_engine(
        cluster.settings.model_copy(update={"database_name": name}), start=False, owner=True
    )
    migrate.upgrade(engine)
    return engine


def superuser(cluster: Cluster, statement: sql.Composable) -> None:
    """Run a statement on the cluster's maintenance database (outside a transaction)."""
    with psycopg.connect(**cluster._conninfo("postgres"), autocommit=True) as connection:
        connection.execute(statement)


def address_csv(path: Path, count: int, *, seed: int = 1) -> Path:
    """An address CSV of ``count`` rows with Lambert 72 positions in Gent."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(100_000, 110_000, count)
    y = rng.uniform(190_000, 200_000, count)
    with path.open("w") as out:
        out.write("id,street,housenumber,postcode,municipality,nis_code,x,y\n")
        for i in range(count):
            out.write(
                f"{seed}-{i},Teststraat {i % 997},{i},9000,Gent,44021,{x[i]:.2f},{y[i]:.2f}\n"
            )
    return path


def counts(engine: Engine) -> tuple[int, int]:
    """Stored addresses and reference areas."""
    with engine.connect() as connection:
        return (
            connection.scalar(select(func.count()).select_from(Address)),
            connection.scalar(select(func.count()).select_from(ReferenceArea)),
        )


# the database going down under the API ---------------------------------------------------------


def test_database_down_gives_fast_503_and_the_app_recovers_by_itself(own: Cluster) -> None:
    engine = database(own, DATABASE)
    add_user(engine, "faults_admin", Role.admin)
    token = create_token(engine, "faults_admin")[1]
    engine.dispose()
    preview = {"target": {"area": square()}, "messages": {"nl": "Opgelet"}, "mode": "direct"}
    calls = {
        "healthz": lambda c: c.get("/healthz"),
        "networks": lambda c: c.get("/networks", headers=bearer(token)),
        "network": lambda c: c.get("/networks/1", headers=bearer(token)),
        "preview": lambda c: c.post("/alerts/preview", json=preview, headers=bearer(token)),
        "anonymous items": lambda c: c.get("/collections/networks/items"),
    }
    expected = {"healthz": 200, "networks": 200, "network": 404, "preview": 200}
    expected["anonymous items"] = 200
    with TestClient(create_app(own.settings)) as client:
        for name, call in calls.items():
            assert call(client).status_code == expected[name], name
        # The pool now holds connections that the stop will cut.
        own.stop()
        try:
            for _ in range(2):  # the first call meets the dead pooled connections
                for name, call in calls.items():
                    started = time.perf_counter()
                    response = call(client)
                    elapsed = time.perf_counter() - started
                    assert_error(response, 503, "database_unavailable")
                    assert elapsed < FAST_S, (name, elapsed)
            principals = client.app.state.principals
            wait_until(lambda: not principals.listening, 2, "the principal cache out of use")
        finally:
            own.start()
        # The same app, no restart: every call answers again at the first attempt.
        for name, call in calls.items():
            assert call(client).status_code == expected[name], name
        # Its principal cache listens again and follows a revocation.
        wait_until(lambda: principals.listening, 10, "the principal cache listening again")
        with engine.begin() as connection:
            connection.execute(text("UPDATE api_tokens SET revoked_at = now()"))
        wait_until(lambda: calls["networks"](client).status_code == 401, 2, "the token refused")


def test_query_cut_by_a_shutdown_gives_503(own: Cluster) -> None:
    """A request whose connection the server terminates mid-query answers 503 too."""
    engine = database(own, DATABASE)
    add_user(engine, "faults_cut", Role.admin)
    token = create_token(engine, "faults_cut")[1]
    engine.dispose()
    with TestClient(create_app(own.settings)) as client:
        assert client.get("/networks", headers=bearer(token)).status_code == 200
        # Terminate every client connection of the database, as a fast shutdown does.
        superuser(
            own,
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}"
            ).format(sql.Literal(DATABASE)),
        )
        # The checkout sees the ended connection (its socket is readable) and replaces it: no error.
        assert client.get("/networks", headers=bearer(token)).status_code == 200


# a read-only database during an import ---------------------------------------------------------


def test_read_only_database_import_gives_a_clear_error(
    own: Cluster, tmp_path: Path, real_data: Path
) -> None:
    name = "bingeo_faults_ro"
    engine = database(own, name)
    try:
        import_addresses(engine, address_csv(tmp_path / "first.csv", 50))
        before = counts(engine)
        superuser(
            own,
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                sql.Identifier(name)
            ),
        )
        engine.dispose()  # new connections take the setting
        with pytest.raises(DatabaseReadOnly, match="read-only: nothing was written") as caught:
            import_addresses(engine, address_csv(tmp_path / "second.csv", 500, seed=2))
        assert caught.value.code == "database_read_only"
        sectors = real_data / "gent" / "gent_statistical_sectors.geojson"
        with pytest.raises(DatabaseReadOnly):
            import_areas(engine, sectors, AreaLevel.sector)
        assert counts(engine) == before
        superuser(
            own,
            sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(
                sql.Identifier(name)
            ),
        )
        engine.dispose()
        import_addresses(engine, address_csv(tmp_path / "second.csv", 500, seed=2))
        assert counts(engine)[0] == before[0] + 500
    finally:
        engine.dispose()
        own.drop_database(name)


# a full disk during an import ------------------------------------------------------------------


@pytest.fixture
def small_tablespace(own: Cluster) -> Iterator[str]:
    """A tablespace on a 12 MB tmpfs; unmounted after the test.

    Only the tables live there: the write-ahead log stays on the cluster's own disk, as on a
    server whose data volume fills up.
    """
    mount = Path(tempfile.mkdtemp(prefix="bingeo-small-disk-"))
    mount.chmod(0o755)
    server = pwd.getpwnam(own.settings.server_user)
    options = f"size=12m,mode=0700,uid={server.pw_uid},gid={server.pw_gid}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True)
    name = "bingeo_small"
    try:
        superuser(
            own,
            sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                sql.Identifier(name), sql.Literal(str(mount))
            ),
        )
        yield name
    finally:
        try:
            superuser(own, sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(name)))
        finally:
            subprocess.run(["umount", str(mount)], check=False)
            mount.rmdir()


def test_full_disk_import_gives_a_clear_error_and_the_database_stays_usable(
    own: Cluster, small_tablespace: str, tmp_path: Path
) -> None:
    name = "bingeo_faults_full"
    own.ensure_database(name)
    for setting in ("default_tablespace", "temp_tablespaces"):
        superuser(
            own,
            sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(name), sql.Identifier(setting), sql.Literal(small_tablespace)
            ),
        )
    engine = database(own, name)
    try:
        import_addresses(engine, address_csv(tmp_path / "small.csv", 100))
        before = counts(engine)
        # About 30 MB of rows for a 12 MB disk.
        big = address_csv(tmp_path / "big.csv", 250_000, seed=3)
        with pytest.raises(DatabaseFull, match="out of disk space: nothing was written") as caught:
            import_addresses(engine, big)
        assert caught.value.code == "database_full"
        assert counts(engine) == before
        # Usable afterwards: the space of the failed import is given back, a small import works.
        import_addresses(engine, address_csv(tmp_path / "more.csv", 100, seed=4))
        assert counts(engine)[0] == before[0] + 100
    finally:
        engine.dispose()
        own.drop_database(name)
