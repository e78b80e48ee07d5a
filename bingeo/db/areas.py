"""Repository of reference areas and police-zone membership."""

from __future__ import annotations

import geopandas as gpd
import shapely
from geoalchemy2 import Geometry
from sqlalchemy import Column, Connection, Text, delete, func, literal, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert

from bingeo.db.bulk import copy_frame, staging_table, upsert_counts
from bingeo.db.models import SRID, AreaLevel, PoliceZoneMunicipality, ReferenceArea

AREA_FIELDS = ("code", "name_nl", "name_fr", "nis_code", "parent_code")


def upsert_areas(
    connection: Connection, level: AreaLevel, frame: gpd.GeoDataFrame
) -> tuple[int, int]:
    """Insert or update areas of ``level`` keyed on their code; returns (inserted, updated)."""
    staging = staging_table(
        "staging_areas",
        [*(Column(name, Text) for name in AREA_FIELDS), Column("geom", Geometry(srid=SRID))],
    )
    staging.create(connection)
    rows = frame[list(AREA_FIELDS)].copy()
    rows["geom"] = shapely.to_wkb(
        shapely.set_srid(frame.geometry.values, SRID), hex=True, include_srid=True
    )
    copy_frame(connection, staging, rows)

    table = ReferenceArea.__table__
    source = select(
        literal(level, table.c.level.type).label("level"),
        *(staging.c[name] for name in AREA_FIELDS),
        func.ST_Multi(staging.c.geom).label("geom"),
    )
    statement = insert(table).from_select(["level", *AREA_FIELDS, "geom"], source)
    changed = ["name_nl", "name_fr", "nis_code", "parent_code", "geom"]
    statement = statement.on_conflict_do_update(
        constraint="uq_reference_areas_level_code",
        set_={name: statement.excluded[name] for name in changed} | {"imported_at": func.now()},
        where=tuple_(*(table.c[n] for n in changed)).is_distinct_from(
            tuple_(*(statement.excluded[n] for n in changed))
        ),
    )
    return upsert_counts(connection, statement)


def replace_police_zone_members(connection: Connection, members: list[tuple[str, str]]) -> None:
    """Set the member municipalities of the police zones named in ``members``."""
    if not members:
        return
    zones = sorted({zone for zone, _ in members})
    table = PoliceZoneMunicipality.__table__
    connection.execute(delete(table).where(table.c.police_zone_code.in_(zones)))
    connection.execute(
        insert(table).on_conflict_do_nothing(),
        [{"police_zone_code": zone, "nis_code": nis} for zone, nis in sorted(set(members))],
    )


def count_by_level(connection: Connection) -> dict[str, int]:
    """Number of stored reference areas per level."""
    table = ReferenceArea.__table__
    rows = connection.execute(select(table.c.level, func.count()).group_by(table.c.level))
    return {AreaLevel(level).value: count for level, count in rows}


__all__ = ["count_by_level", "replace_police_zone_members", "upsert_areas"]


def analyze(connection: Connection) -> None:
    """Refresh the planner's statistics of the reference areas (after a bulk change)."""
    connection.execute(text("ANALYZE reference_areas"))
