"""Queries for deriving network areas from street lists: a municipality's addresses and areas."""

from __future__ import annotations

import pandas as pd
from shapely import wkb as shapely_wkb
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, func, select

from bingeo.db.models import Address, AreaLevel, ReferenceArea

ADDRESSES = Address.__table__
AREAS = ReferenceArea.__table__


def municipality_codes(connection: Connection, name: str) -> list[str]:
    """NIS codes of the municipality called ``name`` (reference areas, then the addresses)."""
    if name.isascii() and name.isdigit() and len(name) == 5:
        return [name]
    lowered = name.strip().lower()
    codes = (
        connection.execute(
            select(AREAS.c.code).where(
                AREAS.c.level == AreaLevel.municipality,
                (func.lower(AREAS.c.name_nl) == lowered) | (func.lower(AREAS.c.name_fr) == lowered),
            )
        )
        .scalars()
        .all()
    )
    if codes:
        return list(codes)
    return list(
        connection.execute(
            select(ADDRESSES.c.nis_code)
            .where(
                func.lower(ADDRESSES.c.municipality) == lowered, ADDRESSES.c.nis_code.is_not(None)
            )
            .distinct()
        ).scalars()
    )


def municipality_addresses(connection: Connection, nis_code: str) -> pd.DataFrame:
    """Every address of a municipality: id, street, house_number, box, x, y (NaN if unlocated)."""
    rows = connection.execute(
        select(
            ADDRESSES.c.id,
            ADDRESSES.c.street,
            ADDRESSES.c.house_number,
            ADDRESSES.c.box,
            func.ST_X(ADDRESSES.c.geom).label("x"),
            func.ST_Y(ADDRESSES.c.geom).label("y"),
        )
        .where(ADDRESSES.c.nis_code == nis_code)
        .order_by(ADDRESSES.c.id)
    ).all()
    frame = pd.DataFrame(rows, columns=["id", "street", "house_number", "box", "x", "y"])
    frame[["x", "y"]] = frame[["x", "y"]].astype(float)
    return frame


def area_geometry(
    connection: Connection,
    level: AreaLevel,
    *,
    code: str | None = None,
    nis_code: str | None = None,
    name: str | None = None,
) -> list[tuple[str, str | None, BaseGeometry]]:
    """Areas of ``level`` by code, or by name (prefix, any case) within a municipality."""
    query = select(AREAS.c.code, AREAS.c.name_nl, func.ST_AsBinary(AREAS.c.geom)).where(
        AREAS.c.level == level
    )
    if code is not None:
        query = query.where(AREAS.c.code == code)
    if nis_code is not None:
        query = query.where(AREAS.c.nis_code == nis_code)
    if name is not None:
        query = query.where(func.lower(AREAS.c.name_nl).startswith(name.strip().lower()))
    return [
        (row[0], row[1], shapely_wkb.loads(bytes(row[2])))
        for row in connection.execute(query.order_by(AREAS.c.code))
    ]
