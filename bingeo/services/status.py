"""What the database holds (``bingeo status``)."""

from __future__ import annotations

from sqlalchemy import Engine

from bingeo.db import addresses as address_repo
from bingeo.db import areas as area_repo
from bingeo.db import migrate
from bingeo.db import networks as network_repo


def database_status(engine: Engine) -> dict[str, object]:
    """Reference areas per level, addresses located/unlocated, networks per kind and status."""
    url = engine.url.render_as_string(hide_password=True)
    with engine.connect() as connection:
        return {
            "database": url,
            "schema_revision": migrate.current(engine),
            "reference_areas": area_repo.count_by_level(connection),
            "addresses": address_repo.count_addresses(connection),
            "networks": network_repo.count_by_kind_status(connection),
        }


def ping(engine: Engine) -> None:
    """Check that the database answers (raises ``DatabaseUnavailable`` otherwise)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from bingeo.errors import DatabaseUnavailable

    try:
        with engine.connect() as connection:
            connection.execute(select(1))
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable("the database does not answer") from exc
