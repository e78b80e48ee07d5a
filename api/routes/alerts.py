"""Alerts scoped to a drawn area: preview, send, cancel, status, CAP 1.2 export."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ActorDep, EngineDep, SettingsDep
from api.routing import CallerFirstRoute
from api.schemas import ERRORS, AddressId
from bingeo.access import Action
from bingeo.services import alerts as service
from bingeo.services.audit import guard_somewhere

router = APIRouter(
    prefix="/alerts", tags=["alerts"], responses=ERRORS, route_class=CallerFirstRoute
)


class CircleTarget(BaseModel):
    """A circle: centre (lon, lat in EPSG:4326) and radius in metres."""

    model_config = ConfigDict(extra="forbid")

    lon: float
    lat: float
    radius_m: float


class AlertTarget(BaseModel):
    """Exactly one of: a drawn area, a circle, or an address (id or text) with a radius."""

    model_config = ConfigDict(extra="forbid")

    area: dict[str, Any] | None = Field(default=None, description="GeoJSON (Multi)Polygon")
    circle: CircleTarget | None = None
    address_id: AddressId | None = None
    address: str | None = Field(default=None, min_length=1, max_length=300)
    radius_m: float | None = None


class AlertRequestBody(BaseModel):
    """What to preview or send."""

    model_config = ConfigDict(extra="forbid")

    target: AlertTarget
    mode: Literal["relay", "direct"] = "relay"
    direct_scope: Literal["area", "networks"] = "area"
    kinds: list[Literal["BIN", "BIN-Z"]] | None = None
    statuses: list[str] | None = Field(default=None, max_length=10)
    messages: dict[Literal["nl", "fr", "de"], str] = Field(min_length=1)
    headline: dict[Literal["nl", "fr", "de"], str] | None = None
    urgency: Literal["immediate", "expected", "future", "unknown"] = "expected"
    reason: str = Field(default="", max_length=1000)
    include_address_ids: list[AddressId] = Field(default_factory=list, max_length=5000)
    exclude_address_ids: list[AddressId] = Field(default_factory=list, max_length=5000)


def _request(body: AlertRequestBody, engine, actor, settings) -> service.AlertRequest:
    # The caller first: no area is parsed for someone who may never send an alert.
    guard_somewhere(engine, actor, Action.send_alert, "alert")
    target = body.target.model_dump(exclude_none=True)
    if body.target.circle is not None:
        target["circle"] = body.target.circle.model_dump()
    area = service.parse_target(engine, target, settings)
    return service.make_request(
        area,
        messages=dict(body.messages),
        mode=body.mode,
        kinds=body.kinds,
        statuses=body.statuses,
        direct_scope=body.direct_scope,
        headline=dict(body.headline or {}),
        urgency=body.urgency,
        reason=body.reason,
        include_address_ids=body.include_address_ids,
        exclude_address_ids=body.exclude_address_ids,
    )


@router.post("/preview", response_model=dict[str, Any])
def preview_alert(
    body: AlertRequestBody, engine: EngineDep, actor: ActorDep, settings: SettingsDep
) -> Response:
    """Who the alert would reach (counts and opaque ids), its cost and message checks.

    Nothing is stored.
    """
    # Plain JSON data already: written as it is by orjson, without a second walk through
    # every value (the standard encoder took ten times as long for a preview's answer).
    result = service.preview_alert(engine, actor, _request(body, engine, actor, settings), settings)
    return Response(orjson.dumps(result), media_type="application/json")


@router.post("", status_code=201)
def send_alert(
    body: AlertRequestBody, engine: EngineDep, actor: ActorDep, settings: SettingsDep
) -> dict[str, Any]:
    """Store the alert with its exact recipient list; the dispatcher delivers it."""
    return service.send_alert(engine, actor, _request(body, engine, actor, settings), settings)


@router.post("/{alert_id}/cancel")
def cancel_alert(alert_id: int, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    """Cancel the deliveries that have not gone out yet."""
    return service.cancel_alert(engine, actor, alert_id)


@router.get("/{alert_id}")
def alert_status(alert_id: int, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    """The alert and its deliveries counted per status and channel."""
    return service.alert_status(engine, actor, alert_id)


@router.get(
    "/{alert_id}/cap.xml",
    response_class=Response,
    responses={200: {"content": {"application/cap+xml": {}}}},
)
def alert_cap(alert_id: int, engine: EngineDep, actor: ActorDep, settings: SettingsDep) -> Response:
    """The alert as CAP 1.2 XML: one info block per language, the area as polygon or circle."""
    xml = service.alert_cap(engine, actor, alert_id, sender=settings.smtp_from)
    return Response(xml, media_type="application/cap+xml")
