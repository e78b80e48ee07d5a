"""Addresses: free-text search (public: address facts only, no personal data)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ActorDep, EngineDep
from api.routes.matches import CoveringNetworkPublic, LanguageDep
from api.schemas import ERRORS
from bingeo.placement import PositionMethod
from bingeo.services import lookup as service

router = APIRouter(prefix="/addresses", tags=["addresses"], responses=ERRORS)
MAX_LIMIT = 20


class PointPublic(BaseModel):
    """A GeoJSON Point in EPSG:4326."""

    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float]


class AddressAnswer(BaseModel):
    """A stored address offered as an answer: its id (members are registered by it), its
    position (approximate ones say how they were found) and the networks covering it."""

    id: int
    street: str
    house_number: str | None
    box: str | None
    postcode: str | None
    municipality: str | None
    nis_code: str | None
    position: PointPublic | None
    approximate: bool
    position_method: PositionMethod | None
    confidence: float
    reason: str
    networks: list[CoveringNetworkPublic]


class Understood(BaseModel):
    """The parts of the query as they were read."""

    street: str | None
    house_number: str | None
    box: str | None
    postcode: str | None
    municipality: str | None


class AddressSearchPublic(BaseModel):
    """The best matching address and the alternatives, or a clear not-found."""

    query: str
    found: bool
    confidence: float
    best: AddressAnswer | None
    alternatives: list[AddressAnswer]
    message: str
    understood: Understood


@router.get("/search", response_model=AddressSearchPublic)
def search_addresses(
    engine: EngineDep,
    actor: ActorDep,
    language: LanguageDep,
    q: Annotated[
        str,
        Query(
            description="A Belgian address as people write it.",
            examples=["Koning Albertlaan 12 bus 3, 3360 Bierbeek"],
            max_length=service.MAX_QUERY_CHARS,
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Answers at most.")] = 5,
) -> AddressSearchPublic:
    """The best matching address (id, position as a GeoJSON Point in EPSG:4326, whether it is
    approximate, the networks covering it), its confidence and the alternatives; for an
    address that does not exist, ``found`` is false and the alternatives are the nearest
    candidates (same street, other numbers; similar streets). Networks are shown as
    ``/addresses/{id}/networks`` shows them: ids and codes to staff only."""
    found = service.search_addresses(engine, actor, q, limit=limit, language=language)
    return AddressSearchPublic.model_validate(found.as_dict())
