"""The migrations on a fresh database of their own: up, down, up again, and equal to the models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from geoalchemy2 import Geometry
from sqlalchemy import Engine, create_engine, delete, func, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bingeo.db import audit as audit_repo
from bingeo.db import migrate
from bingeo.db.cluster import Cluster
from bingeo.db.engine import make_engine
from bingeo.db.models import AuditEntry, Base
from bingeo.settings import Settings

# Tables that PostGIS and its extensions create in the public schema: not bingeo's.
FOREIGN_TABLES = {"spatial_ref_sys", "geocode_settings", "geocode_settings_default", "topology"}
FOREIGN_SCHEMAS = {"tiger", "tiger_data", "topology"}


@pytest.fixture(scope="module")
def fresh(settings: Settings) -> Iterator[Engine]:
    """An empty database with PostGIS and pg_trgm, dropped after the module."""
    name = f"bingeo_migr_{uuid.uuid4().hex[:10]}"
    if settings.embedded:
        cluster = Cluster(settings)
        cluster.ensure_database(name)
        url = cluster.url(name)
        drop = lambda: cluster.drop_database(name)  # noqa: E731
    else:
        url, drop = _external_database(settings, name)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop()


def _external_database(settings: Settings, name: str):
    import psycopg
    from psycopg import sql

    from bingeo.db.engine import database_url

    server = make_url(database_url(settings, owner=True))
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        for extension in ("postgis", "pg_trgm"):
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
            )

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    return url, drop


def bingeo_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - FOREIGN_TABLES


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Compare bingeo's objects only, not those of PostGIS."""
    if type_ == "table":
        return name not in FOREIGN_TABLES and getattr(obj, "schema", None) not in FOREIGN_SCHEMAS
    return True


def test_upgrade_creates_every_table_with_its_indexes(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    assert migrate.current(fresh) is not None
    expected = set(Base.metadata.tables)
    assert bingeo_tables(fresh) - {"alembic_version"} == expected

    inspector = inspect(fresh)
    geometry_columns = [
        (table.name, column.name, column.type.spatial_index)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, Geometry)
    ]
    indexed = {
        (table, column)
        for table, column, wanted in geometry_columns
        for index in inspector.get_indexes(table)
        if index["column_names"] == [column]
        and index.get("dialect_options", {}).get("postgresql_using") == "gist"
    }
    declared = {
        (table.name, index.columns[0].name)
        for table in Base.metadata.sorted_tables
        for index in table.indexes
        if index.dialect_options["postgresql"]["using"] == "gist" and len(index.columns) == 1
    } | {(t, c) for t, c, wanted in geometry_columns if wanted}
    # The GiST indexes are exactly those the models declare; only an alert's circle centre, a
    # record never searched by place, goes without.
    assert indexed == declared
    assert {(t, c) for t, c, _ in geometry_columns} - indexed == {("alerts", "circle_centre")}

    trigram = [
        index
        for index in inspector.get_indexes("streets")
        if index["column_names"] == ["name"]
        and index.get("dialect_options", {}).get("postgresql_using") == "gin"
        and index.get("dialect_options", {}).get("postgresql_ops") == {"name": "gin_trgm_ops"}
    ]
    assert trigram, inspector.get_indexes("streets")


def test_schema_equals_the_models(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    with fresh.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": True}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_downgrade_to_base_and_up_again(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    enums_up = {e["name"] for e in inspect(fresh).get_enums()}
    assert {"area_level", "network_kind", "network_status"} <= enums_up

    migrate.downgrade(fresh, "base")
    assert migrate.current(fresh) is None
    assert bingeo_tables(fresh) <= {"alembic_version"}
    assert {e["name"] for e in inspect(fresh).get_enums()} == set()

    migrate.upgrade(fresh)
    assert bingeo_tables(fresh) - {"alembic_version"} == set(Base.metadata.tables)
    assert {e["name"] for e in inspect(fresh).get_enums()} == enums_up


def test_the_application_role_is_no_superuser_and_cannot_rewrite_the_audit_trail(
    db: Engine, settings: Settings
) -> None:
    app = make_engine(settings)  # the role the API and the worker connect as
    try:
        with app.begin() as connection:
            audit_repo.append(connection, action="login", object_type="user", outcome="allowed")
            role = connection.execute(
                text(
                    "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                    "WHERE rolname = current_user"
                )
            ).one()
        if settings.embedded:
            assert tuple(role) == (False, False, False)
        refused = [
            update(AuditEntry).values(action="changed"),
            delete(AuditEntry),
            text("TRUNCATE audit_log"),
            text("CREATE TABLE intruder (id int)"),
        ]
        for statement in refused:
            with (
                pytest.raises(DBAPIError, match="permission denied|cannot be changed"),
                app.begin() as connection,
            ):
                connection.execute(statement)
    finally:
        app.dispose()
    # The owner (a superuser in the embedded cluster) is stopped by the triggers, TRUNCATE too.
    for statement in (delete(AuditEntry), text("TRUNCATE audit_log")):
        with (
            pytest.raises(DBAPIError, match="the audit trail cannot be changed"),
            db.begin() as connection,
        ):
            connection.execute(statement)
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == 1
