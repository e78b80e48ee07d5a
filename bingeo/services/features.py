"""OGC API Features collections (read-only): networks and the reference areas of each level.

These are public facts (no personal data), readable by everyone. Networks are read through
``bingeo.services.networks`` so that both APIs give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely import wkb as shapely_wkb
from shapely.geometry import MultiPolygon, shape
from sqlalchemy import Engine

from bingeo.access import Action, Actor, authorize
from bingeo.db import features as feature_repo
from bingeo.db.models import AreaLevel
from bingeo.errors import NotFound
from bingeo.files import decimal_id
from bingeo.geometry import storage_to_geojson
from bingeo.services import networks as network_service

Bounds = tuple[float, float, float, float]
NETWORKS = "networks"


@dataclass(frozen=True)
class Collection:
    """A feature collection: networks (``level`` None) or the reference areas of one level."""

    id: str
    title: str
    description: str
    level: AreaLevel | None = None


COLLECTIONS: tuple[Collection, ...] = (
    Collection(NETWORKS, "Networks", "BIN and BIN-Z networks with their areas (public facts)."),
    Collection("sectors", "Statistical sectors", "Statbel statistical sectors.", AreaLevel.sector),
    Collection("wijken", "Wijken", "Neighbourhoods of the municipalities.", AreaLevel.wijk),
    Collection(
        "deelgemeenten",
        "Deelgemeenten",
        "Former municipalities (deelgemeenten) within today's municipalities.",
        AreaLevel.deelgemeente,
    ),
    Collection(
        "municipalities", "Municipalities", "Municipalities by NIS code.", AreaLevel.municipality
    ),
    Collection("police-zones", "Police zones", "Local police zones.", AreaLevel.police_zone),
)
_BY_ID = {c.id: c for c in COLLECTIONS}


@dataclass
class AreaRecord:
    """A stored reference area (public facts); ``geometry`` in EPSG:31370."""

    code: str
    name_nl: str | None
    name_fr: str | None
    nis_code: str | None
    parent_code: str | None
    level: AreaLevel
    geometry: MultiPolygon


Item = AreaRecord | network_service.NetworkRecord


def get_collection(collection_id: str) -> Collection:
    """The collection named ``collection_id``; ``NotFound`` for any other name."""
    try:
        return _BY_ID[collection_id]
    except KeyError:
        known = ", ".join(_BY_ID)
        raise NotFound(f"no collection {collection_id!r}; known: {known}") from None


def extents(engine: Engine, actor: Actor) -> dict[str, Bounds | None]:
    """The lon/lat (CRS84) bounding box of the stored data of each collection, None if empty."""
    authorize(actor.principal, Action.read_public)
    with engine.connect() as connection:
        areas = feature_repo.area_hulls(connection)
        networks = feature_repo.network_hull(connection)
    result: dict[str, Bounds | None] = {}
    for collection in COLLECTIONS:
        hull = networks if collection.level is None else areas.get(collection.level)
        result[collection.id] = None if hull is None else _lonlat_bounds(hull)
    return result


def list_items(
    engine: Engine,
    actor: Actor,
    collection_id: str,
    *,
    bbox: Bounds | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Item], int]:
    """A page of a collection's features intersecting ``bbox`` (EPSG:31370), and the total."""
    collection = get_collection(collection_id)
    authorize(actor.principal, Action.read_public)
    if collection.level is None:
        filters = network_service.NetworkFilter(bbox=bbox)
        networks, total = network_service.list_networks(
            engine, actor, filters, limit=limit, offset=offset
        )
        return list(networks), total
    with engine.connect() as connection:
        rows, total = feature_repo.list_areas(
            connection, collection.level, bbox=bbox, limit=limit, offset=offset
        )
    return [_area(row) for row in rows], total


def get_item(engine: Engine, actor: Actor, collection_id: str, feature_id: str) -> Item:
    """One feature of a collection: a network by its id, an area by its code."""
    collection = get_collection(collection_id)
    authorize(actor.principal, Action.read_public)
    if collection.level is None:
        network_id = decimal_id(feature_id)
        if network_id is None:
            raise NotFound(f"no feature {feature_id!r} in collection {collection_id!r}")
        return network_service.get_network(engine, actor, network_id)
    with engine.connect() as connection:
        row = feature_repo.get_area(connection, collection.level, feature_id)
    if row is None:
        raise NotFound(f"no feature {feature_id!r} in collection {collection_id!r}")
    return _area(row)


def _area(row) -> AreaRecord:
    values = dict(row._mapping)
    values["level"] = AreaLevel(values["level"])
    geometry = shapely_wkb.loads(bytes(values.pop("wkb")))
    return AreaRecord(**values, geometry=geometry)


def _lonlat_bounds(hull_wkb: bytes) -> Bounds:
    # Reprojected like the features themselves, so that the extent holds every feature served.
    lonlat = shape(storage_to_geojson(shapely_wkb.loads(hull_wkb)))
    return tuple(float(v) for v in lonlat.bounds)


__all__ = [
    "COLLECTIONS",
    "AreaRecord",
    "Collection",
    "Item",
    "extents",
    "get_collection",
    "get_item",
    "list_items",
]
