"""Queries behind the OGC API Features collections: reference areas by level, and their hulls.

Networks are listed and read through ``bingeo.db.networks``; only their extent is asked here.
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, func, select

from bingeo.db.models import SRID, AreaLevel, Network, ReferenceArea

AREAS = ReferenceArea.__table__
NETWORKS = Network.__table__
AREA_COLUMNS = (
    AREAS.c.code,
    AREAS.c.name_nl,
    AREAS.c.name_fr,
    AREAS.c.nis_code,
    AREAS.c.parent_code,
    AREAS.c.level,
)

Bounds = tuple[float, float, float, float]


def list_areas(
    connection: Connection,
    level: AreaLevel,
    *,
    bbox: Bounds | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Row], int]:
    """A page of areas of ``level`` ordered by code (``bbox`` in EPSG:31370), and the total."""
    conditions = [AREAS.c.level == level]
    if bbox:
        conditions.append(AREAS.c.geom.intersects(func.ST_MakeEnvelope(*bbox, SRID)))
    total = connection.execute(
        select(func.count()).select_from(AREAS).where(*conditions)
    ).scalar_one()
    # Ordered by code, which is unique per level, so that pages neither overlap nor skip.
    rows = connection.execute(
        _with_geometry().where(*conditions).order_by(AREAS.c.code).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def get_area(connection: Connection, level: AreaLevel, code: str) -> Row | None:
    """One area of ``level`` by its code (with ``wkb`` of its geometry), or None."""
    return connection.execute(
        _with_geometry().where(AREAS.c.level == level, AREAS.c.code == code)
    ).first()


def area_hulls(connection: Connection) -> dict[AreaLevel, bytes]:
    """The convex hull (WKB, EPSG:31370) of the stored areas of each level that has any."""
    rows = connection.execute(
        select(AREAS.c.level, _hull(AREAS.c.geom)).group_by(AREAS.c.level)
    ).all()
    return {AreaLevel(level): bytes(wkb) for level, wkb in rows}


def network_hull(connection: Connection) -> bytes | None:
    """The convex hull (WKB, EPSG:31370) of every stored network, or None without networks."""
    wkb = connection.execute(select(_hull(NETWORKS.c.geom))).scalar()
    return None if wkb is None else bytes(wkb)


def _with_geometry():
    return select(*AREA_COLUMNS, func.ST_AsBinary(AREAS.c.geom).label("wkb")).select_from(AREAS)


def _hull(geom):
    # A hull rather than ST_Extent: the extent is wanted in lon/lat, and the lon/lat bounds of a
    # Lambert box exceed those of the data by up to a few hundred metres (the grids are rotated).
    # Hulls per row first keep the collected geometry small.
    return func.ST_AsBinary(func.ST_ConvexHull(func.ST_Collect(func.ST_ConvexHull(geom))))


__all__ = ["area_hulls", "get_area", "list_areas", "network_hull"]
