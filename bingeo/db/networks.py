"""Repository of networks (BIN / BIN-Z) and their areas."""

from __future__ import annotations

import geopandas as gpd
import shapely
from geoalchemy2 import Geometry
from sqlalchemy import Column, Connection, Text, cast, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from bingeo.db.bulk import copy_frame, staging_table, upsert_counts
from bingeo.db.models import SRID, Network

NETWORK_FIELDS = ("code", "name", "kind", "status", "nis_code", "police_zone_code")


def upsert_networks(connection: Connection, frame: gpd.GeoDataFrame) -> tuple[int, int]:
    """Insert or update networks keyed on their code; a changed network gets a new version."""
    staging = staging_table(
        "staging_networks",
        [*(Column(name, Text) for name in NETWORK_FIELDS), Column("geom", Geometry(srid=SRID))],
    )
    staging.create(connection)
    rows = frame[list(NETWORK_FIELDS)].copy()
    rows["geom"] = shapely.to_wkb(
        shapely.set_srid(frame.geometry.values, SRID), hex=True, include_srid=True
    )
    copy_frame(connection, staging, rows)

    table = Network.__table__
    source = select(
        staging.c.code,
        staging.c.name,
        cast(staging.c.kind, table.c.kind.type),
        cast(staging.c.status, table.c.status.type),
        staging.c.nis_code,
        staging.c.police_zone_code,
        func.ST_Multi(staging.c.geom),
    )
    statement = insert(table).from_select([*NETWORK_FIELDS, "geom"], source)
    changed = ["name", "kind", "status", "nis_code", "police_zone_code", "geom"]
    statement = statement.on_conflict_do_update(
        index_elements=["code"],
        set_={name: statement.excluded[name] for name in changed}
        | {"version": table.c.version + 1, "updated_at": func.now()},
        where=tuple_(*(table.c[n] for n in changed)).is_distinct_from(
            tuple_(*(statement.excluded[n] for n in changed))
        ),
    )
    return upsert_counts(connection, statement)


def count_by_kind_status(connection: Connection) -> dict[str, dict[str, int]]:
    """Number of networks per kind and lifecycle status."""
    table = Network.__table__
    rows = connection.execute(
        select(table.c.kind, table.c.status, func.count()).group_by(table.c.kind, table.c.status)
    )
    result: dict[str, dict[str, int]] = {}
    for kind, status, count in rows:
        result.setdefault(kind.value, {})[status.value] = int(count)
    return result
