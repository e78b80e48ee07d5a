"""OGC API - Features, Part 1 (Core, GeoJSON, OpenAPI 3.0): read-only collections.

Networks and the reference areas of each level, as GeoJSON in EPSG:4326 (CRS84), readable by
anyone: they are public facts. Clients such as GDAL (``OAPIF:``) and QGIS follow the links.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.deps import ActorDep, EngineDep, PagingDep, public_url
from api.geojson import (
    GEOJSON,
    GeoJSONResponse,
    feature_collection,
    lonlat_geometry,
    parse_bbox,
)
from api.routes.networks import network_feature
from api.routes.web import DOCS_URL
from api.schemas import ERRORS
from bingeo.services import features as service

JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
GEOJSON_RESPONSE = {200: {"content": {GEOJSON: {}}}}


def output_format(
    f: Annotated[str | None, Query(description="Encoding: `json` (the only one offered)")] = None,
) -> None:
    """Check the ``f`` parameter: JSON/GeoJSON is the only encoding."""
    if f not in (None, "", "json", "geojson"):
        raise HTTPException(400, f"unsupported format f={f!r}; use f=json")


router = APIRouter(tags=["features"], responses=ERRORS, dependencies=[Depends(output_format)])
BboxDep = Annotated[tuple[float, float, float, float] | None, Depends(parse_bbox)]


@router.get("/", name="ogc_landing")
def landing_page(request: Request) -> dict[str, Any]:
    """The OGC API landing page: links to the API description, conformance and collections."""
    return {
        "title": request.app.title,
        "description": request.app.description,
        "links": [
            _link(request, "self", JSON, "ogc_landing", title="This document"),
            _app_link(request, "service-desc", OPENAPI, request.app.openapi_url, "API definition"),
            _app_link(request, "service-doc", "text/html", DOCS_URL, "API documentation"),
            _link(request, "conformance", JSON, "ogc_conformance", title="Conformance classes"),
            _link(request, "data", JSON, "ogc_collections", title="Feature collections"),
        ],
    }


@router.get("/conformance", name="ogc_conformance")
def conformance() -> dict[str, list[str]]:
    """The OGC API - Features conformance classes this API implements."""
    return {"conformsTo": CONFORMANCE}


@router.get("/collections", name="ogc_collections")
def collections(request: Request, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    """Every feature collection with its extent."""
    extents = service.extents(engine, actor)
    return {
        "links": [_link(request, "self", JSON, "ogc_collections")],
        "collections": [_collection(request, c, extents[c.id]) for c in service.COLLECTIONS],
    }


@router.get("/collections/{collectionId}", name="ogc_collection")
def collection(
    collectionId: str,  # noqa: N803 - the OGC name of the path parameter
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
) -> dict[str, Any]:
    """One feature collection with its extent."""
    chosen = service.get_collection(collectionId)
    return _collection(request, chosen, service.extents(engine, actor)[chosen.id])


@router.get(
    "/collections/{collectionId}/items",
    name="ogc_items",
    response_class=GeoJSONResponse,
    responses=GEOJSON_RESPONSE,
)
def items(
    collectionId: str,  # noqa: N803 - the OGC name of the path parameter
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    paging: PagingDep,
    bbox: BboxDep,
) -> GeoJSONResponse:
    """A page of a collection's features, optionally intersecting ``bbox`` (lon/lat).

    ``bbox`` selects the features intersecting the Lambert 72 bounds of the lon/lat box, a box
    that holds the lon/lat box and exceeds it by at most some tens of metres at its corners.
    """
    found, total = service.list_items(
        engine, actor, collectionId, bbox=bbox, limit=paging.limit, offset=paging.offset
    )
    here = request.url.remove_query_params("f")
    links = [
        {"rel": "self", "type": GEOJSON, "href": _here(request)},
        _link(request, "collection", JSON, "ogc_collection", collectionId=collectionId),
    ]
    if paging.offset + len(found) < total:
        url = here.include_query_params(offset=paging.offset + paging.limit, limit=paging.limit)
        links.append(
            {"rel": "next", "type": GEOJSON, "href": public_url(request, url.path, url.query)}
        )
    if paging.offset > 0:
        url = here.include_query_params(
            offset=max(paging.offset - paging.limit, 0), limit=paging.limit
        )
        links.append(
            {"rel": "prev", "type": GEOJSON, "href": public_url(request, url.path, url.query)}
        )
    body = feature_collection(
        [_feature(item) for item in found],
        total=total,
        links=links,
        timeStamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    return GeoJSONResponse(body)


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    name="ogc_item",
    response_class=GeoJSONResponse,
    responses=GEOJSON_RESPONSE,
)
def item(
    collectionId: str,  # noqa: N803 - the OGC names of the path parameters
    featureId: str,  # noqa: N803
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
) -> GeoJSONResponse:
    """One feature: a network by its id, a reference area by its code."""
    feature = _feature(service.get_item(engine, actor, collectionId, featureId))
    feature["links"] = [
        {"rel": "self", "type": GEOJSON, "href": _here(request)},
        _link(request, "collection", JSON, "ogc_collection", collectionId=collectionId),
    ]
    return GeoJSONResponse(feature)


def area_feature(area: service.AreaRecord) -> dict[str, Any]:
    """A reference area as a GeoJSON Feature; its id is its code."""
    return {
        "type": "Feature",
        "id": area.code,
        "geometry": lonlat_geometry(area.geometry),
        "properties": {
            "code": area.code,
            "name_nl": area.name_nl,
            "name_fr": area.name_fr,
            "nis_code": area.nis_code,
            "parent_code": area.parent_code,
            "level": area.level.value,
        },
    }


def _feature(item: service.Item) -> dict[str, Any]:
    if isinstance(item, service.AreaRecord):
        return area_feature(item)
    return network_feature(item, encoded=True)


def _collection(
    request: Request,
    collection: service.Collection,
    bounds: tuple[float, float, float, float] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link(request, "self", JSON, "ogc_collection", collectionId=collection.id),
            _link(
                request,
                "items",
                GEOJSON,
                "ogc_items",
                title=f"{collection.title} as GeoJSON",
                collectionId=collection.id,
            ),
        ],
    }
    if bounds is not None:
        body["extent"] = {"spatial": {"bbox": [list(bounds)], "crs": CRS84}}
    return body


def _link(
    request: Request, rel: str, media_type: str, route: str, *, title: str | None = None, **params
) -> dict[str, str]:
    href = public_url(request, request.app.url_path_for(route, **params))
    link = {"rel": rel, "type": media_type, "href": href}
    if title:
        link["title"] = title
    return link


def _app_link(request: Request, rel: str, media_type: str, path: str, title: str) -> dict[str, str]:
    # FastAPI's own pages (OpenAPI document, Swagger UI) are not named routes.
    return {"rel": rel, "type": media_type, "href": public_url(request, path), "title": title}


def _here(request: Request) -> str:
    return public_url(request, request.url.path, request.url.query)
