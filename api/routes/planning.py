"""Planning a network: validation reports, clip and snap, proposals, lifecycle, versions, the
invitation list, roles (contacts) and dormant networks."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, EngineDep, SettingsDep
from api.routes.networks import network_feature
from api.routing import CallerFirstRoute
from api.schemas import ERRORS, GeoJSONGeometry, RowId
from bingeo.access import Action
from bingeo.db.models import AreaLevel, ContactRole, NetworkKind, NetworkStatus
from bingeo.errors import BinGeoError, InvalidInput
from bingeo.files import GEO_SUFFIXES
from bingeo.geometry import json_value
from bingeo.planning import ContactInput
from bingeo.services import planning as service
from bingeo.services.audit import guard_somewhere

router = APIRouter(tags=["planning"], responses=ERRORS, route_class=CallerFirstRoute)
STREET_LIST_SUFFIXES = (".csv", ".txt")


class ClipRequest(BaseModel):
    """A proposal and the networks to cut out of it."""

    model_config = ConfigDict(extra="forbid")

    geometry: GeoJSONGeometry
    against: list[RowId] = Field(min_length=1, max_length=100)
    network_id: RowId | None = None


class SnapRequest(BaseModel):
    """A proposal and the boundaries to snap its edges to."""

    model_config = ConfigDict(extra="forbid")

    geometry: GeoJSONGeometry
    level: Literal["wijk", "sector"] = "wijk"
    tolerance_m: float = Field(default=10.0, gt=0, le=100)
    network_id: RowId | None = None


class ProposalCreate(BaseModel):
    """A proposal to store as a network in the state ``idea``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: NetworkKind = NetworkKind.BIN
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    geometry: GeoJSONGeometry


class TransitionRequest(BaseModel):
    """A lifecycle step (``to``) and/or facts to record."""

    model_config = ConfigDict(extra="forbid")

    to: NetworkStatus | None = None
    facts: dict[str, Any] = Field(default_factory=dict)


class ContactBody(BaseModel):
    """A person in a role of a network (personal data)."""

    model_config = ConfigDict(extra="forbid")

    role: ContactRole
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    language: Literal["nl", "fr", "de"] = "nl"
    adult: bool | None = None
    screened: bool | None = None
    screened_at: dt.date | None = None
    organisation: str | None = Field(default=None, max_length=200)

    def to_input(self) -> ContactInput:
        """The body as the service's input."""
        return ContactInput(**self.model_dump())


@router.post("/planning/validate")
async def validate(
    request: Request,
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    network_id: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="The network being redrawn.")
    ] = None,
    layer: Annotated[str | None, Query(max_length=200)] = None,
    network: Annotated[
        str | None, Query(max_length=64, description="Network of a street-list upload.")
    ] = None,
) -> dict[str, Any]:
    """The validation report of a proposed area, without side effect.

    Send a GeoJSON geometry (or ``{"geometry": ...}``) as JSON, or a multipart upload ``file``:
    GeoJSON, GeoPackage, zipped Shapefile, KML, or a street-list CSV (then ``network`` picks the
    network if the list holds several).
    """
    # The caller first: nothing is read or parsed for someone who may never see a report.
    await run_in_threadpool(
        guard_somewhere, engine, actor, Action.read_aggregates, "planning_report"
    )
    content_type = request.headers.get("content-type", "")
    limits = settings.geometry_limits()
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("multipart upload needs a 'file' part")
        data = await upload.read()
        name = Path(upload.filename or "upload").name
        network = network or _text(form.get("network"))
        layer = layer or _text(form.get("layer"))
        return await run_in_threadpool(
            _validate_upload, engine, actor, limits, data, name, layer, network, network_id
        )
    # Parsing and geometry work in a worker thread: the event loop keeps answering.
    return await run_in_threadpool(
        _validate_json, engine, actor, limits, await request.body(), network_id
    )


@router.post("/planning/clip")
def clip(body: ClipRequest, engine: EngineDep, actor: ActorDep, settings: SettingsDep) -> dict:
    """The proposal without the chosen networks' areas, with its new report."""
    guard_somewhere(engine, actor, Action.read_aggregates, "planning_report")
    proposal = service.proposal_from_geojson(body.geometry, limits=settings.geometry_limits())
    _, report = service.clip_proposal(
        engine, actor, proposal, body.against, network_id=body.network_id
    )
    return report.as_dict()


@router.post("/planning/snap")
def snap(body: SnapRequest, engine: EngineDep, actor: ActorDep, settings: SettingsDep) -> dict:
    """The proposal with its edges on wijk or sector boundaries within the tolerance."""
    guard_somewhere(engine, actor, Action.read_aggregates, "planning_report")
    proposal = service.proposal_from_geojson(body.geometry, limits=settings.geometry_limits())
    _, report = service.snap_proposal(
        engine,
        actor,
        proposal,
        level=AreaLevel(body.level),
        tolerance_m=body.tolerance_m,
        network_id=body.network_id,
    )
    return report.as_dict()


@router.post("/planning/proposals", status_code=201)
def create_proposal(
    body: ProposalCreate,
    response: Response,
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Store a proposal as a network in the state ``idea`` (refused when a finding blocks it)."""
    guard_somewhere(engine, actor, Action.write_network, "network")
    proposal = service.proposal_from_geojson(body.geometry, limits=settings.geometry_limits())
    network, report = service.save_proposal(
        engine, actor, proposal, name=body.name, kind=body.kind, code=body.code
    )
    response.headers["Location"] = f"/networks/{network.id}"
    response.headers["ETag"] = f'"{network.version}"'
    return {"network": network_feature(network), "report": report.as_dict(geometry=False)}


@router.get("/planning/dormant")
def dormant(
    engine: EngineDep,
    actor: ActorDep,
    settings: SettingsDep,
    months: Annotated[int | None, Query(ge=1, le=120)] = None,
) -> dict[str, Any]:
    """Active networks without message or member change for ``months`` (default: setting)."""
    months = months or settings.dormant_months
    networks = service.dormant_networks(engine, actor, months=months)
    return {"months": months, "networks": networks}


@router.get("/networks/{network_id}/lifecycle")
def lifecycle(network_id: int, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    """State, recorded facts, history and the possible next steps of a network."""
    return service.lifecycle_state(engine, actor, network_id)


@router.post("/networks/{network_id}/lifecycle")
def transition(
    network_id: int, body: TransitionRequest, engine: EngineDep, actor: ActorDep
) -> dict[str, Any]:
    """Record lifecycle facts and/or take a step; an illegal step is refused (409)."""
    return service.transition(engine, actor, network_id, to=body.to, facts=body.facts)


@router.get("/networks/{network_id}/versions")
def versions(network_id: int, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    """The current area and every previous one, with who, when and why."""
    return {"network_id": network_id, "versions": service.list_versions(engine, actor, network_id)}


@router.get("/networks/{network_id}/invitations.csv")
def invitations(network_id: int, engine: EngineDep, actor: ActorDep) -> Response:
    """Every address in the network's area, for the information evening's mailing (audited)."""
    text, _ = service.invitations_csv(engine, actor, network_id)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="invitations-{network_id}.csv"'},
    )


@router.get("/networks/{network_id}/contacts")
def list_contacts(network_id: int, engine: EngineDep, actor: ActorDep) -> dict[str, Any]:
    """The people in the roles of a network (personal data; audited)."""
    return {"contacts": service.list_contacts(engine, actor, network_id)}


@router.post("/networks/{network_id}/contacts", status_code=201)
def add_contact(
    network_id: int, body: ContactBody, engine: EngineDep, actor: ActorDep
) -> dict[str, int]:
    """Add a person in a role (coordinator, steering group, police officer, ...)."""
    return {"id": service.add_contact(engine, actor, network_id, body.to_input())}


@router.put("/networks/{network_id}/contacts/{contact_id}", status_code=204)
def update_contact(
    network_id: int, contact_id: int, body: ContactBody, engine: EngineDep, actor: ActorDep
) -> Response:
    """Replace a contact (e.g. to record the coordinator's screening)."""
    service.update_contact(engine, actor, network_id, contact_id, body.to_input())
    return Response(status_code=204)


@router.delete("/networks/{network_id}/contacts/{contact_id}", status_code=204)
def remove_contact(
    network_id: int, contact_id: int, engine: EngineDep, actor: ActorDep
) -> Response:
    """Remove a contact."""
    service.remove_contact(engine, actor, network_id, contact_id)
    return Response(status_code=204)


def _validate_json(engine, actor, limits, body: bytes, network_id: int | None) -> dict[str, Any]:
    payload = json_value(body, label="body", hint="send GeoJSON or a multipart upload")
    geometry = (
        payload.get("geometry") if isinstance(payload, dict) and "type" not in payload else payload
    )
    proposal = service.proposal_from_geojson(geometry, limits=limits)
    return service.validate(engine, actor, proposal, network_id=network_id).as_dict()


def _validate_upload(
    engine,
    actor,
    limits,
    data: bytes,
    name: str,
    layer: str | None,
    network: str | None,
    network_id: int | None,
) -> dict[str, Any]:
    suffix = Path(name).suffix.lower()
    if suffix not in (*GEO_SUFFIXES, *STREET_LIST_SUFFIXES):
        raise InvalidInput(
            f"{name}: unsupported file type; use GeoJSON, GeoPackage, zipped Shapefile, KML "
            "or a street-list CSV"
        )
    with tempfile.TemporaryDirectory(prefix="bingeo-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            if suffix in STREET_LIST_SUFFIXES:
                proposal = service.proposal_from_street_list(engine, path, network=network)
            else:
                proposal = service.proposal_from_file(path, layer=layer, limits=limits)
        except BinGeoError as exc:
            # Errors name the file read (GDAL's messages too): the uploaded name, not the
            # server's temporary folder.
            exc.detail = exc.detail.replace(str(path), name).replace(folder, "")
            raise
    proposal.source = proposal.source.replace(f"upload{suffix}", name)
    return service.validate(engine, actor, proposal, network_id=network_id).as_dict()


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
