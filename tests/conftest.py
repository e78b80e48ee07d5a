"""Shared fixtures: a real PostGIS test database (embedded cluster or BINGEO_DATABASE_URL)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from db_helpers import empty_tables
from sqlalchemy import Engine, text

from bingeo.db import migrate
from bingeo.db.cluster import Cluster
from bingeo.db.engine import make_engine
from bingeo.settings import Settings

# One database per test run, so that runs side by side do not disturb each other.
TEST_DATABASE = os.environ.get("BINGEO_TEST_DATABASE") or f"bingeo_test_{os.getpid()}"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings pointing at this run's test database (``settings.database_name``)."""
    real = os.environ.get("BINGEO_REAL_DATA_DIR") or str(ROOT.parent / "shared" / "data" / "real")
    return Settings(database_name=TEST_DATABASE, real_data_dir=Path(real))


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    """A migrated, empty test database; a test that cannot reach PostGIS fails here."""
    if settings.embedded:
        cluster = Cluster(settings)
        cluster.start()
        cluster.drop_database(TEST_DATABASE)
        cluster.ensure_database(TEST_DATABASE)
    # As the schema's owner (migrations, imports, emptying tables); the API under test connects
    # as the application's role.
    engine = make_engine(settings, owner=True)
    if not settings.embedded:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if settings.embedded:
        Cluster(settings).drop_database(TEST_DATABASE)


@pytest.fixture
def db(engine: Engine) -> Engine:
    """The test database, emptied before the test."""
    empty_tables(engine)
    return engine


@pytest.fixture(scope="session")
def real_data(settings: Settings) -> Path:
    """The folder of real Belgian data; its absence is a failure, not a skip."""
    path = Path(settings.real_data_dir)
    assert (path / "SOURCES.md").exists(), f"real Belgian data not found at {path}"
    return path


# Fixtures of the API tests (client, users of every role).
pytest_plugins = ["api_helpers"]
