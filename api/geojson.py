"""GeoJSON responses (``application/geo+json``, EPSG:4326) and request parameters for geometry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import JSONResponse

from bingeo.errors import InvalidInput
from bingeo.geometry import bbox_to_storage

GEOJSON = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """A JSON response with the GeoJSON media type of RFC 7946."""

    media_type = GEOJSON


def feature_collection(
    features: list[dict[str, Any]],
    *,
    total: int | None = None,
    links: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A FeatureCollection with OGC-style counts and links."""
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if total is not None:
        collection["numberMatched"] = total
    collection["numberReturned"] = len(features)
    if links is not None:
        collection["links"] = links
    collection.update(extra)
    return collection


def parse_bbox(
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat in EPSG:4326",
            examples=["3.70,51.03,3.75,51.06"],
        ),
    ] = None,
) -> tuple[float, float, float, float] | None:
    """The ``bbox`` query parameter as a Lambert 72 box, or None."""
    if bbox is None or bbox == "":
        return None
    try:
        values = [float(v) for v in bbox.split(",")]
    except ValueError:
        raise InvalidInput("bbox must be four numbers: minLon,minLat,maxLon,maxLat") from None
    if len(values) == 6:  # a 3D box: drop the heights
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise InvalidInput("bbox must be four numbers: minLon,minLat,maxLon,maxLat")
    return bbox_to_storage(tuple(values))
