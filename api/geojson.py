"""GeoJSON responses (``application/geo+json``, EPSG:4326) and request parameters for geometry."""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any

import shapely
from fastapi import Query
from fastapi.responses import JSONResponse
from shapely.geometry.base import BaseGeometry

from bingeo.errors import InvalidInput
from bingeo.geometry import bbox_to_storage, storage_to_geojson

GEOJSON = "application/geo+json"
# How JSONResponse writes JSON: geometries encoded ahead are written the same way.
_JSON_OPTIONS: dict[str, Any] = {
    "ensure_ascii": False,
    "allow_nan": False,
    "indent": None,
    "separators": (",", ":"),
}
# A geometry's place in the text while the rest is encoded: a JSON string of NUL and its
# number (stored text cannot hold NUL; a text that looks the same is caught by the count).
_SPLICE = re.compile(r'"\\u0000(\d+)"')


class EncodedGeometry:
    """A GeoJSON geometry already encoded as JSON text, for a ``GeoJSONResponse`` (only)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class GeoJSONResponse(JSONResponse):
    """A JSON response with the GeoJSON media type of RFC 7946.

    Written as ``JSONResponse`` writes it, with each ``EncodedGeometry`` spliced in as its text.
    """

    media_type = GEOJSON

    def render(self, content: Any) -> bytes:
        texts: list[str] = []

        def placeholder(value: object) -> str:
            if not isinstance(value, EncodedGeometry):
                raise TypeError(f"{type(value).__name__} is not JSON serializable")
            texts.append(value.text)
            return f"\x00{len(texts) - 1}"

        text = json.dumps(content, default=placeholder, **_JSON_OPTIONS)
        if texts:
            parts = _SPLICE.split(text)  # text, number, text, number, ..., text
            if len(parts) // 2 == len(texts):
                parts[1::2] = texts
                text = "".join(parts)
            else:  # some other text looks like a placeholder: encode the geometries again
                text = json.dumps(content, default=_parsed, **_JSON_OPTIONS)
        return text.encode("utf-8")


def _parsed(value: object) -> dict[str, Any]:
    if not isinstance(value, EncodedGeometry):
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return json.loads(value.text)


def lonlat_geometry(geometry: BaseGeometry) -> EncodedGeometry:
    """A storage (31370) geometry as GeoJSON in EPSG:4326 (``storage_to_geojson``), encoded once
    per distinct geometry: network and area geometries change rarely and are read often."""
    return _encoded(shapely.to_wkb(geometry))


@functools.lru_cache(maxsize=2048)
def _encoded(wkb: bytes) -> EncodedGeometry:
    # Keyed by the geometry itself: an entry can never be stale, only unused.
    geojson = storage_to_geojson(shapely.from_wkb(wkb))
    return EncodedGeometry(json.dumps(geojson, **_JSON_OPTIONS))


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
