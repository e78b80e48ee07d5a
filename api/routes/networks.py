"""Networks: list, read, create, change, delete (GeoJSON in EPSG:4326)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from api.deps import ActorDep, EngineDep, IdPath, PagingDep, SettingsDep, public_url
from api.geojson import (
    GEOJSON,
    GeoJSONResponse,
    feature_collection,
    lonlat_geometry,
    parse_bbox,
)
from api.routing import CallerFirstRoute
from api.schemas import ERRORS, NetworkCreate, NetworkUpdate
from bingeo.access import Action
from bingeo.db.models import NetworkKind, NetworkStatus
from bingeo.errors import InvalidInput, PreconditionRequired
from bingeo.files import decimal_id
from bingeo.geometry import geojson_to_storage, storage_to_geojson
from bingeo.services import networks as service
from bingeo.services.audit import guard_somewhere

router = APIRouter(
    prefix="/networks", tags=["networks"], responses=ERRORS, route_class=CallerFirstRoute
)
GEOJSON_RESPONSE = {200: {"content": {GEOJSON: {}}}}


def network_feature(network: service.NetworkRecord, *, encoded: bool = False) -> dict[str, Any]:
    """A network as a GeoJSON Feature with its public facts as properties.

    ``encoded``: its geometry as an ``EncodedGeometry``, for a ``GeoJSONResponse``.
    """
    properties = {
        "code": network.code,
        "name": network.name,
        "kind": network.kind.value,
        "status": network.status.value,
        "nis_code": network.nis_code,
        "police_zone_code": network.police_zone_code,
        "nis_codes": network.nis_codes,
        "police_zone_codes": network.police_zone_codes,
        "crossing": network.crossing,
        "how_to_join": network.how_to_join,
        "area_m2": round(network.area_m2, 1),
        "version": network.version,
        "created_at": network.created_at.isoformat(),
        "updated_at": network.updated_at.isoformat(),
    }
    if network.warnings:
        properties["warnings"] = network.warnings
    return {
        "type": "Feature",
        "id": network.id,
        "geometry": (
            lonlat_geometry(network.geometry) if encoded else storage_to_geojson(network.geometry)
        ),
        "properties": properties,
    }


@router.get("", response_class=GeoJSONResponse, responses=GEOJSON_RESPONSE)
def list_networks(
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    paging: PagingDep,
    bbox: Annotated[tuple[float, float, float, float] | None, Depends(parse_bbox)],
    kind: NetworkKind | None = None,
    status: NetworkStatus | None = None,
    municipality: Annotated[str | None, Query(description="NIS code", max_length=5)] = None,
    police_zone: Annotated[str | None, Query(max_length=32)] = None,
) -> GeoJSONResponse:
    """Networks (public facts) matching the filters, as a FeatureCollection."""
    filters = service.NetworkFilter(
        kind=kind, status=status, nis_code=municipality, police_zone_code=police_zone, bbox=bbox
    )
    networks, total = service.list_networks(
        engine, actor, filters, limit=paging.limit, offset=paging.offset
    )
    links = []
    if paging.offset + len(networks) < total:
        url = request.url.include_query_params(offset=paging.offset + paging.limit)
        links.append(
            {"rel": "next", "type": GEOJSON, "href": public_url(request, url.path, url.query)}
        )
    body = feature_collection(
        [network_feature(n, encoded=True) for n in networks], total=total, links=links
    )
    return GeoJSONResponse(body)


@router.get("/{network_id}", response_class=GeoJSONResponse, responses=GEOJSON_RESPONSE)
def get_network(network_id: IdPath, engine: EngineDep, actor: ActorDep) -> GeoJSONResponse:
    """One network; its ``ETag`` is the version an update must name."""
    network = service.get_network(engine, actor, network_id)
    return GeoJSONResponse(network_feature(network, encoded=True), headers=_etag(network))


@router.post("", status_code=201, response_class=GeoJSONResponse, responses=GEOJSON_RESPONSE)
def create_network(
    body: NetworkCreate, engine: EngineDep, actor: ActorDep, settings: SettingsDep
) -> GeoJSONResponse:
    """Create a network in the state ``idea`` (later states come through its lifecycle); where
    it lies (municipalities, police zones) is derived from its area."""
    # The caller first: no area is parsed for someone who may never write a network.
    guard_somewhere(engine, actor, Action.write_network, "network")
    geometry, warnings = geojson_to_storage(
        body.geometry, label="geometry", limits=settings.geometry_limits()
    )
    network = service.create_network(
        engine,
        actor,
        name=body.name,
        kind=body.kind,
        code=body.code,
        how_to_join=body.how_to_join,
        geometry=geometry,
        warnings=warnings,
    )
    headers = _etag(network) | {"Location": f"/networks/{network.id}"}
    return GeoJSONResponse(network_feature(network, encoded=True), status_code=201, headers=headers)


@router.patch("/{network_id}", response_class=GeoJSONResponse, responses=GEOJSON_RESPONSE)
def update_network(
    network_id: IdPath,
    body: NetworkUpdate,
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    if_match: Annotated[str | None, Header()] = None,
) -> GeoJSONResponse:
    """Change a network; name the version you change (``If-Match`` or ``version``)."""
    guard_somewhere(engine, actor, Action.write_network, "network", network_id)
    version = _version(if_match, body.version)
    changes = body.model_dump(exclude_unset=True, exclude={"version", "reason"})
    if not changes:
        raise InvalidInput("nothing to change")
    for required in ("name", "kind", "status", "geometry"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be null")
    warnings: list[str] = []
    if "geometry" in changes:
        changes["geometry"], warnings = geojson_to_storage(
            changes["geometry"], label="geometry", limits=settings.geometry_limits()
        )
    network = service.update_network(
        engine,
        actor,
        network_id,
        version=version,
        changes=changes,
        warnings=warnings,
        reason=body.reason,
    )
    return GeoJSONResponse(network_feature(network, encoded=True), headers=_etag(network))


@router.delete("/{network_id}", status_code=204)
def delete_network(
    network_id: IdPath,
    engine: EngineDep,
    actor: ActorDep,
    if_match: Annotated[str | None, Header()] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
    remove_people: Annotated[
        bool,
        Query(description="Admins only: also delete the network's members and contacts."),
    ] = False,
) -> Response:
    """Delete a network; name the version you delete (``If-Match`` or ``version``).

    A network with members or contacts is ended through its lifecycle; only an admin may delete
    it with its people, asking for it with ``remove_people=true``.
    """
    service.delete_network(
        engine,
        actor,
        network_id,
        version=_version(if_match, version),
        remove_people=remove_people,
    )
    return Response(status_code=204)


def _etag(network: service.NetworkRecord) -> dict[str, str]:
    return {"ETag": f'"{network.version}"'}


def _version(if_match: str | None, version: int | None) -> int:
    if if_match:
        number = decimal_id(if_match.strip().removeprefix("W/").strip('"'))
        if number is None:
            raise InvalidInput('If-Match must be the ETag of the network, e.g. "3"')
        return number
    if version is not None:
        return version
    raise PreconditionRequired("name the version you change: If-Match header or 'version'")
