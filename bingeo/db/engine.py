"""The database URL and engine for the configured server or the embedded cluster."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from bingeo.db.cluster import Cluster
from bingeo.settings import Settings


def database_url(settings: Settings, *, start: bool = True) -> str:
    """The SQLAlchemy URL to use; starts the embedded cluster when none is configured."""
    if settings.database_url:
        url = settings.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
    cluster = Cluster(settings)
    if start:
        cluster.start()
    return cluster.url()


def make_engine(settings: Settings, *, start: bool = True, **kwargs: object) -> Engine:
    """A SQLAlchemy engine on the configured database (pool checked before use)."""
    options: dict[str, object] = {"pool_pre_ping": True}
    options.update(kwargs)
    return create_engine(database_url(settings, start=start), **options)
