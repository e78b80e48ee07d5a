"""Addresses: free-text search (public: address facts only, no personal data)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.schemas import ERRORS
from bingeo.services import lookup as service

router = APIRouter(prefix="/addresses", tags=["addresses"], responses=ERRORS)
MAX_LIMIT = 20


@router.get("/search")
def search_addresses(
    engine: EngineDep,
    q: Annotated[
        str,
        Query(
            description="A Belgian address as people write it.",
            examples=["Koning Albertlaan 12 bus 3, 3360 Bierbeek"],
            max_length=service.MAX_QUERY_CHARS,
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Answers at most.")] = 5,
) -> dict[str, Any]:
    """The best matching address (position as a GeoJSON Point in EPSG:4326), its confidence
    and the alternatives; for an address that does not exist, ``found`` is false and the
    alternatives are the nearest candidates (same street, other numbers; similar streets)."""
    return service.lookup_address(engine, q, limit=limit).as_dict()
