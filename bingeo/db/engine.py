"""The database URL and engine for the configured server or the embedded cluster."""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, InvalidatePoolError

from bingeo.db.cluster import APP_ROLE, Cluster
from bingeo.errors import BinGeoError, DatabaseFull, DatabaseReadOnly, DatabaseUnavailable
from bingeo.settings import Settings

# Seconds to wait for a connection to be set up: a server that does not answer (a TCP server
# behind a dead route) must give an error quickly, not hang a request.
CONNECT_TIMEOUT_S = 5


def database_url(settings: Settings, *, start: bool = True, owner: bool = False) -> str:
    """The SQLAlchemy URL to use; starts the embedded cluster when none is configured.

    The application's role by default; ``owner``: the role owning the schema, for migrations
    and bulk imports (``BINGEO_DATABASE_OWNER_URL``, else ``BINGEO_DATABASE_URL``; the
    embedded cluster's bootstrap superuser).
    """
    if settings.database_url:
        url = (owner and settings.database_owner_url) or settings.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
    cluster = Cluster(settings)
    if start:
        cluster.start()
    return cluster.url() if owner else cluster.url(role=APP_ROLE)


def make_engine(
    settings: Settings, *, start: bool = True, owner: bool = False, **kwargs: object
) -> Engine:
    """A SQLAlchemy engine on the configured database (pooled connections checked before use,
    without a round trip: ``_check_idle``), as the application's role, or as the schema's owner
    with ``owner`` (see ``database_url``).

    Connections time out after ``CONNECT_TIMEOUT_S``; a lost server, a read-only database and a
    full disk are raised as ``DatabaseUnavailable``, ``DatabaseReadOnly`` and ``DatabaseFull``.
    """
    options: dict[str, object] = dict(kwargs)
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
    connect_args.update(options.get("connect_args") or {})  # type: ignore[call-overload]
    options["connect_args"] = connect_args
    engine = create_engine(database_url(settings, start=start, owner=owner), **options)
    event.listen(engine, "handle_error", _translate_event)
    event.listen(engine, "checkout", _check_idle)
    return engine


def lone_reads(engine: Engine) -> Connection:
    """A connection for reads that need no transaction (autocommit): no ``BEGIN`` before the
    first statement and no ``ROLLBACK`` when it goes back to the pool, two round trips fewer."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def database_errors() -> Iterator[None]:
    """Raise database failures met inside as bingeo errors.

    For code that also talks to the driver directly (``COPY`` through a psycopg cursor), whose
    errors do not pass through the engine's translation.
    """
    try:
        yield
    except BinGeoError:
        raise
    except (psycopg.Error, DBAPIError) as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc


def translate(exc: BaseException) -> BinGeoError | None:
    """The bingeo error for a database failure a user can act on, or None."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(original, psycopg.errors.ReadOnlySqlTransaction):
        return DatabaseReadOnly("the database is read-only: nothing was written")
    if isinstance(original, psycopg.errors.DiskFull):
        return DatabaseFull("the database server is out of disk space: nothing was written")
    if isinstance(original, psycopg.OperationalError) and (
        getattr(exc, "connection_invalidated", False) or _no_server(original)
    ):
        return DatabaseUnavailable("the database is unavailable; try again")
    return None


def _check_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    """Replace a pooled connection that the server ended while it sat idle; no round trip.

    The server writes nothing to an idle connection unless it ends it (shutdown, restart,
    ``pg_terminate_backend``, idle timeout) or, rarely, sends a notice: anything to read means
    the connection is replaced, and, as a pre-ping that fails does, every pooled connection
    older than now (a server that went away ended them all).
    """
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return
    if getattr(dbapi_connection, "closed", False) or _readable(fileno()):
        raise InvalidatePoolError("the server ended the pooled connection")


def _readable(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def _translate_event(context: ExceptionContext) -> BinGeoError | None:
    # A pre-ping (when a caller asks for one) must see the driver's error to replace a dead
    # pooled connection.
    if context.is_pre_ping:
        return None
    original = context.original_exception
    if isinstance(original, psycopg.OperationalError) and context.is_disconnect:
        return DatabaseUnavailable("the database is unavailable; try again")
    return translate(original)


def _no_server(error: psycopg.OperationalError) -> bool:
    """A connection that could not be made (no server, shutting down, starting up)."""
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate is None or sqlstate in {"57P01", "57P02", "57P03", "08000", "08001", "08006"}
