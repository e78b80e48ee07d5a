"""Which networks cover an address or a point: public for residents, with ids for staff."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel

from api.deps import ActorDep, EngineDep
from api.schemas import ERRORS
from bingeo.networks import join_language
from bingeo.services import matching as service

router = APIRouter(tags=["networks"], responses=ERRORS)


def resident_language(
    lang: Annotated[
        Literal["nl", "fr"] | None,
        Query(description="Language of the generated texts; else Accept-Language, else nl"),
    ] = None,
    accept_language: Annotated[str | None, Header(max_length=500)] = None,
) -> str:
    """The language to answer a resident in: ``lang``, else the best of Accept-Language."""
    return lang or join_language(accept_language)


LanguageDep = Annotated[str, Depends(resident_language)]


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
    approximate: bool | None = None  # for an address: whether its position is approximate
    networks: list[CoveringNetworkPublic]


@router.get(
    "/addresses/{address_id}/networks",
    response_model=CoveringPublic,
    response_model_exclude_none=True,
)
def networks_of_address(
    address_id: int, engine: EngineDep, actor: ActorDep, language: LanguageDep
) -> CoveringPublic:
    """The networks whose area covers a stored address, with how to join each."""
    covering = service.networks_covering(engine, actor, address_id=address_id, language=language)
    return _public(covering)


@router.get("/points/networks", response_model=CoveringPublic, response_model_exclude_none=True)
def networks_at_point(
    engine: EngineDep,
    actor: ActorDep,
    language: LanguageDep,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude (EPSG:4326)")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude (EPSG:4326)")],
) -> CoveringPublic:
    """The networks whose area covers a point given in longitude/latitude, with how to join."""
    covering = service.networks_covering(engine, actor, point=(lon, lat), language=language)
    return _public(covering)


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
        address_id=covering.address_id,
        located=covering.located,
        approximate=covering.approximate,
        networks=networks,
    )
