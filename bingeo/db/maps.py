"""Read models for maps: networks and reference areas as GeoDataFrames in EPSG:31370."""

from __future__ import annotations

import geopandas as gpd
import shapely
from sqlalchemy import Connection, func, select

from bingeo.db.models import SRID, AreaLevel, Network, ReferenceArea

NETWORK_COLUMNS = ("code", "name", "kind", "status", "nis_code", "police_zone_code")
AREA_COLUMNS = ("code", "name_nl", "nis_code", "parent_code")


def networks_frame(connection: Connection, *, nis_code: str | None = None) -> gpd.GeoDataFrame:
    """Every stored network (public fields only) with its area, ordered by code."""
    table = Network.__table__
    statement = select(
        *(table.c[name] for name in NETWORK_COLUMNS), func.ST_AsBinary(table.c.geom)
    ).order_by(table.c.code)
    if nis_code is not None:
        # A network lying partly in the municipality is on its map.
        statement = statement.where(table.c.nis_codes.contains([nis_code]))
    rows = connection.execute(statement).all()
    records = [
        {
            "code": row.code,
            "name": row.name,
            "kind": row.kind.value,
            "status": row.status.value,
            "nis_code": row.nis_code,
            "police_zone_code": row.police_zone_code,
        }
        for row in rows
    ]
    return _frame(records, [row[-1] for row in rows], NETWORK_COLUMNS)


def areas_frame(
    connection: Connection, level: AreaLevel | str, *, nis_code: str | None = None
) -> gpd.GeoDataFrame:
    """The stored reference areas of one level (optionally of one municipality), by code."""
    table = ReferenceArea.__table__
    statement = (
        select(*(table.c[name] for name in AREA_COLUMNS), func.ST_AsBinary(table.c.geom))
        .where(table.c.level == AreaLevel(level))
        .order_by(table.c.code)
    )
    if nis_code is not None:
        statement = statement.where(table.c.nis_code == nis_code)
    rows = connection.execute(statement).all()
    records = [{name: row[i] for i, name in enumerate(AREA_COLUMNS)} for row in rows]
    return _frame(records, [row[-1] for row in rows], AREA_COLUMNS)


def _frame(records: list[dict], wkbs: list[bytes], columns: tuple[str, ...]) -> gpd.GeoDataFrame:
    geometry = shapely.from_wkb([bytes(w) for w in wkbs]) if wkbs else []
    return gpd.GeoDataFrame(
        records, columns=list(columns), geometry=gpd.GeoSeries(geometry, crs=SRID), crs=SRID
    )
