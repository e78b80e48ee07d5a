"""The embedded PostgreSQL + PostGIS cluster that bingeo runs when no server is configured."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from bingeo.errors import DatabaseUnavailable
from bingeo.settings import Settings

SUPERUSER = "bingeo"
# The role the application connects as: no superuser, only the privileges migration 0015 grants
# it (rows of bingeo's tables, sequences, LISTEN); the superuser owns the schema and migrates it.
APP_ROLE = "bingeo_app"
PORT = 5432
EXTENSIONS = ("postgis", "pg_trgm")


@dataclass(frozen=True)
class ClusterStatus:
    """What ``bingeo db status`` reports about the embedded cluster."""

    data_dir: Path
    initialised: bool
    running: bool
    pid: int | None


class Cluster:
    """A private cluster in ``settings.data_dir``, reachable only through a unix socket there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir).absolute()
        self.pgdata = self.root / "pgdata"
        self.socket_dir = self.root / "run"
        self.log_file = self.root / "postgresql.log"

    # public -----------------------------------------------------------------------------------

    def url(self, database: str | None = None, *, role: str = SUPERUSER) -> str:
        """SQLAlchemy URL of a database of this cluster (psycopg 3 driver, unix socket), as the
        owner (the bootstrap superuser) unless ``role`` names another, such as ``APP_ROLE``."""
        name = database or self.settings.database_name
        return f"postgresql+psycopg://{role}@/{name}?host={self.socket_dir}&port={PORT}"

    def status(self) -> ClusterStatus:
        """Whether the cluster exists and its postmaster is alive."""
        pid = self._live_pid()
        return ClusterStatus(
            data_dir=self.root,
            initialised=(self.pgdata / "PG_VERSION").exists(),
            running=pid is not None,
            pid=pid,
        )

    def start(self) -> ClusterStatus:
        """Create the cluster once, start it if needed and make sure the database exists."""
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if self._live_pid() is None:
            self._remove_stale_pid_file()
            self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log_file))
        self._wait_ready()
        self.ensure_database(self.settings.database_name)
        return self.status()

    def stop(self) -> ClusterStatus:
        """Stop the postmaster (fast shutdown); harmless when it is not running."""
        if self._live_pid() is not None:
            self._pg_ctl("stop", "-w", "-m", "fast")
        return self.status()

    def ensure_database(self, name: str) -> None:
        """Create database ``name`` with the PostGIS and pg_trgm extensions if it is missing, and
        the application's login role ``APP_ROLE`` (not a superuser) if the cluster lacks it."""
        with psycopg.connect(**self._conninfo("postgres"), autocommit=True) as conn:
            _ensure_app_role(conn)
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(**self._conninfo(name), autocommit=True) as conn:
            for extension in EXTENSIONS:
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
                )

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (used by tests for their own database)."""
        with psycopg.connect(**self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # private ----------------------------------------------------------------------------------

    def _conninfo(self, database: str) -> dict[str, object]:
        return {"host": str(self.socket_dir), "port": PORT, "user": SUPERUSER, "dbname": database}

    def _bindir(self) -> Path:
        if self.settings.pg_bindir:
            return Path(self.settings.pg_bindir)
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
        if candidates:
            return Path(candidates[0]).parent
        found = shutil.which("initdb")
        if found:
            return Path(found).parent
        raise DatabaseUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
            "postgresql-15-postgis-3 or set BINGEO_PG_BINDIR"
        )

    def _run_as_server_user(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            args = ["runuser", "-u", self.settings.server_user, "--", *args]
        return subprocess.run(args, capture_output=True, text=True, check=False)

    def _prepare_dirs(self) -> None:
        for folder in (self.root, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() == 0:
            user = pwd.getpwnam(self.settings.server_user)
            for folder in (self.root, self.socket_dir):
                os.chown(folder, user.pw_uid, user.pw_gid)
            self._check_reachable_by(user)

    def _check_reachable_by(self, user: pwd.struct_passwd) -> None:
        for parent in self.root.parents:
            mode = parent.stat().st_mode
            if parent.stat().st_uid != user.pw_uid and not mode & 0o001:
                raise DatabaseUnavailable(
                    f"the server user {user.pw_name!r} cannot enter {parent}; "
                    "set BINGEO_DATA_DIR to a folder it can reach"
                )

    def _initdb(self) -> None:
        self._prepare_dirs()
        result = self._run_as_server_user(
            [
                str(self._bindir() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        if result.returncode != 0:
            raise DatabaseUnavailable(f"initdb failed: {result.stderr.strip()}")
        settings = {
            "listen_addresses": "''",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "unix_socket_permissions": "0700",
            "port": str(PORT),
            "max_connections": "100",
            "shared_buffers": "'256MB'",
            "work_mem": "'32MB'",
            "maintenance_work_mem": "'512MB'",
            "max_wal_size": "'4GB'",
            # No replicas or archives of this cluster: a relation created (or truncated) in a
            # transaction, such as an index built or a table filled by a first national import,
            # is then written once and synced at commit instead of also going through the WAL.
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "fsync": "on",
        }
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# bingeo embedded cluster\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def _pg_ctl(self, *args: str) -> None:
        self._prepare_dirs()
        result = self._run_as_server_user(
            [str(self._bindir() / "pg_ctl"), "-D", str(self.pgdata), *args]
        )
        if result.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise DatabaseUnavailable(
                f"pg_ctl {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )

    def _pid_file_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def _live_pid(self) -> int | None:
        pid = self._pid_file_pid()
        if pid is None:
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        # A pid reused by an unrelated process after a crash is not our postmaster.
        if b"postgres" not in cmdline or str(self.pgdata).encode() not in cmdline:
            return None
        return pid

    def _remove_stale_pid_file(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.exists():
            pid_file.unlink()

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(**self._conninfo("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable(f"embedded cluster not ready: {exc}") from exc
                time.sleep(0.2)


def _ensure_app_role(conn: psycopg.Connection) -> None:
    """Create ``APP_ROLE`` as a login role without superuser, database or role creation rights.

    Roles belong to the whole cluster: several test runs may create it at the same moment, and
    all but one then find it made.
    """
    role = conn.execute(
        "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
    ).fetchone()
    if role is not None:
        if not role[0]:  # made by migration 0015 before the cluster knew it
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(APP_ROLE)))
        return
    with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                sql.Identifier(APP_ROLE)
            )
        )
