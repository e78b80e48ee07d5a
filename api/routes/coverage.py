"""Coverage, overlaps and uncovered neighbourhoods as GeoJSON, and the coverage map as HTML.

Aggregates only: police of the zone, planners of the municipality and admins may read them.
Member counts from 1 to 4 are the text "< 5" for callers without member rights (analysts,
planners); see ``bingeo.coverage.suppress_counts`` for the totals.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import shapely
from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from api.deps import ActorDep, EngineDep, SettingsDep
from api.geojson import GEOJSON, GeoJSONResponse, feature_collection
from api.routes.web import map_page
from api.schemas import ERRORS
from bingeo.db.models import AreaLevel
from bingeo.geometry import GEOJSON_EPSG
from bingeo.services import coverage as service

router = APIRouter(tags=["coverage"], responses=ERRORS)
GEOJSON_RESPONSE = {200: {"content": {GEOJSON: {}}}}
Zone = Annotated[str | None, Query(description="Police zone code", max_length=32)]
Municipality = Annotated[str | None, Query(description="NIS code", max_length=5)]
Inactive = Annotated[bool, Query(description="Count networks that are not active too")]
Level = Annotated[
    AreaLevel | None,
    Query(description="Reference level; default: the finest with areas in the scope"),
]
CandidateId = Annotated[
    str, Path(description="A candidate zone id from /gaps", max_length=40, pattern=r"^[\w-]+$")
]
Language = Annotated[Literal["nl", "fr"], Query(description="Language of the map's texts")]
# The coverage document of each coverage result: the service hands every request of a scope the
# same result while the data is unchanged, and drops it (and so its document) when it changes.
_DOCUMENTS: weakref.WeakKeyDictionary[service.CoverageResult, bytes] = weakref.WeakKeyDictionary()
_DOCUMENTS_LOCK = threading.Lock()


def _features(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """The rows as GeoJSON features in EPSG:4326 (missing values as null).

    GEOS writes the geometries' JSON in one vectorised call: geopandas' ``to_json`` builds
    them coordinate by coordinate in Python, several times slower for a zone's sectors.
    """
    if not len(frame):
        return []
    lonlat = np.asarray(frame.geometry.to_crs(GEOJSON_EPSG))
    geometries = [None if text is None else json.loads(text) for text in shapely.to_geojson(lonlat)]
    facts = frame.drop(columns=frame.geometry.name).astype(object)
    rows = facts.where(facts.notna(), None).to_dict("records")
    return [
        {"type": "Feature", "properties": row, "geometry": geometry}
        for row, geometry in zip(rows, geometries, strict=True)
    ]


@router.get("/coverage", response_class=GeoJSONResponse, responses=GEOJSON_RESPONSE)
def get_coverage(
    engine: EngineDep,
    actor: ActorDep,
    zone: Zone = None,
    municipality: Municipality = None,
    level: Level = None,
    include_inactive: Inactive = False,
) -> Response:
    """Coverage figures per reference area of the scope; the scope totals as ``totals``, the
    levels with areas in the scope as ``levels``; ``members_suppressed`` says whether member
    counts from 1 to 4 are given as "< 5" (then ``members_per_1000`` is null there)."""
    result = service.coverage(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=include_inactive,
    )
    with _DOCUMENTS_LOCK:
        document = _DOCUMENTS.get(result)
    if document is None:
        document = GeoJSONResponse(
            feature_collection(
                _features(result.areas),
                scope=result.scope.describe(),
                level=result.level.value,
                levels=list(result.levels),
                members_suppressed=result.suppressed,
                totals=result.totals,
            )
        ).body
        with _DOCUMENTS_LOCK:
            _DOCUMENTS[result] = document
    return Response(document, media_type=GEOJSON)


@router.get("/overlaps", response_class=GeoJSONResponse, responses=GEOJSON_RESPONSE)
def get_overlaps(
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    zone: Zone = None,
    municipality: Municipality = None,
    include_inactive: Inactive = False,
) -> GeoJSONResponse:
    """Overlapping network pairs (geometry: the overlap); border crossings as ``crossings``."""
    result = service.overlaps(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        include_inactive=include_inactive,
        min_overlap_m2=settings.min_overlap_m2,
    )
    crossings = feature_collection(_features(result.crossings))
    return GeoJSONResponse(
        feature_collection(
            _features(result.pairs),
            scope=result.scope.describe(),
            min_overlap_m2=result.min_overlap_m2,
            crossings=crossings,
        )
    )


@router.get("/gaps", response_class=GeoJSONResponse, responses=GEOJSON_RESPONSE)
def get_gaps(
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    zone: Zone = None,
    municipality: Municipality = None,
    level: Level = None,
    include_inactive: Inactive = False,
) -> GeoJSONResponse:
    """Candidate zones for new networks, ranked (each with ``id``, ``name``, ``addresses``,
    ``uncovered``, ``distance_m``; validate one with ``POST /gaps/{id}/validate``); the ranked
    uncovered areas as ``areas``."""
    result = service.gaps(
        engine,
        actor,
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=include_inactive,
        **service.gap_options(settings),
    )
    return GeoJSONResponse(
        feature_collection(
            _features(result.zones),
            scope=result.scope.describe(),
            level=result.level.value,
            areas=feature_collection(_features(result.areas)),
        )
    )


@router.post("/gaps/{candidate_id}/validate")
def validate_gap(
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    candidate_id: CandidateId,
    include_inactive: Inactive = False,
) -> dict[str, Any]:
    """The planning report of a candidate zone, as ``POST /planning/validate`` gives it for
    the zone's area (writes nothing)."""
    report = service.validate_gap(
        engine,
        actor,
        candidate_id,
        include_inactive=include_inactive,
        **service.gap_options(settings),
    )
    return report.as_dict()


@router.get("/maps/coverage", response_class=HTMLResponse)
def get_coverage_map(
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    zone: Zone = None,
    municipality: Municipality = None,
    level: Level = None,
    include_inactive: Inactive = False,
    lang: Language = "nl",
) -> HTMLResponse:
    """The coverage map of the scope (HTML; scripts and styles served by bingeo itself)."""
    fmap = service.coverage_map(
        engine,
        actor,
        settings,
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=include_inactive,
        language=lang,
    )
    return map_page(fmap.get_root().render(), settings)


@router.get("/networks/{network_id}/map", response_class=HTMLResponse)
def get_network_map(
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    network_id: int,
    level: Level = None,
    lang: Language = "nl",
) -> HTMLResponse:
    """The map of one network: its area, its addresses and members counted (no personal data)."""
    fmap = service.network_map(engine, actor, settings, network_id, level=level, language=lang)
    return map_page(fmap.get_root().render(), settings)
