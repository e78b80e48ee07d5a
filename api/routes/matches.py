"""Which networks cover an address or a point: public for residents, with ids for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ActorDep, EngineDep
from api.schemas import ERRORS
from bingeo.services import matching as service

router = APIRouter(tags=["networks"], responses=ERRORS)


class CoveringNetworkPublic(BaseModel):
    """A covering network; ``id``, ``code`` and places only for authenticated staff."""

    name: str
    kind: str
    status: str
    how_to_join: str | None = None
    id: int | None = None
    code: str | None = None
    nis_code: str | None = None
    police_zone_code: str | None = None


class CoveringPublic(BaseModel):
    """The networks covering an address or a point (boundary counts as inside)."""

    address_id: int | None = None
    located: bool
    networks: list[CoveringNetworkPublic]


@router.get(
    "/addresses/{address_id}/networks",
    response_model=CoveringPublic,
    response_model_exclude_none=True,
)
def networks_of_address(address_id: int, engine: EngineDep, actor: ActorDep) -> CoveringPublic:
    """The networks whose area covers a stored address."""
    return _public(service.networks_covering(engine, actor, address_id=address_id))


@router.get("/points/networks", response_model=CoveringPublic, response_model_exclude_none=True)
def networks_at_point(
    engine: EngineDep,
    actor: ActorDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude (EPSG:4326)")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude (EPSG:4326)")],
) -> CoveringPublic:
    """The networks whose area covers a point given in longitude/latitude."""
    return _public(service.networks_covering(engine, actor, point=(lon, lat)))


def _public(covering: service.Covering) -> CoveringPublic:
    networks = [
        CoveringNetworkPublic(
            name=n.name,
            kind=n.kind.value,
            status=n.status.value,
            how_to_join=n.how_to_join,
            id=n.id,
            code=n.code,
            nis_code=n.nis_code,
            police_zone_code=n.police_zone_code,
        )
        for n in covering.networks
    ]
    return CoveringPublic(
        address_id=covering.address_id, located=covering.located, networks=networks
    )
