"""Members of a network (personal data: coordinators and police officers of the zone)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ActorDep, EngineDep, PagingDep
from api.routing import CallerFirstRoute
from api.schemas import ERRORS
from bingeo.members import MemberInput
from bingeo.services import members as service

router = APIRouter(
    prefix="/networks/{network_id}/members",
    tags=["members"],
    responses=ERRORS,
    route_class=CallerFirstRoute,
)


class MemberCreate(BaseModel):
    """A member to register at a known address (``address_id`` from /addresses/search)."""

    model_config = ConfigDict(extra="forbid")

    address_id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    language: Literal["nl", "fr", "de"] = "nl"
    channels: list[Literal["email", "sms", "voice"]] = Field(min_length=1, max_length=3)
    consent_at: dt.datetime


class MemberPublic(BaseModel):
    """A member as their coordinator and the zone's police officers see them."""

    id: int
    network_id: int
    address_id: int
    street: str | None
    house_number: str | None
    box: str | None
    postcode: str | None
    municipality: str | None
    name: str
    email: str | None
    phone: str | None
    language: str
    channels: list[str]
    consent_at: dt.datetime
    outside_area: bool


class MemberPage(BaseModel):
    """A page of members."""

    total: int
    members: list[MemberPublic]


@router.get("", response_model=MemberPage)
def list_members(
    network_id: int, engine: EngineDep, actor: ActorDep, paging: PagingDep
) -> MemberPage:
    """The members of a network (each read is audited)."""
    members, total = service.list_members(
        engine, actor, network_id, limit=paging.limit, offset=paging.offset
    )
    return MemberPage(total=total, members=members)


@router.post("", status_code=201)
def register_member(
    network_id: int, body: MemberCreate, engine: EngineDep, actor: ActorDep
) -> dict[str, int]:
    """Register a member; the address must lie inside the network."""
    member = MemberInput(
        name=body.name,
        language=body.language,
        channels=tuple(body.channels),
        consent_at=body.consent_at,
        email=body.email,
        phone=body.phone,
    )
    member_id = service.register_member(
        engine, actor, network_id, address_id=body.address_id, member=member
    )
    return {"id": member_id}


@router.delete("/{member_id}", status_code=204)
def remove_member(network_id: int, member_id: int, engine: EngineDep, actor: ActorDep) -> Response:
    """Remove a member."""
    service.remove_member(engine, actor, network_id, member_id)
    return Response(status_code=204)
