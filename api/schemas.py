"""Request and response bodies (NetworkCreate / NetworkUpdate / NetworkPublic ...)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from bingeo.db.models import NetworkKind, NetworkStatus

GeoJSONGeometry = dict[str, Any]
# Ids in bodies and queries within the range of their PostgreSQL column: a larger number is
# refused at the edge, before numpy or the database meet it.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]
AddressId = Annotated[int, Field(ge=1, le=2**63 - 1)]
JOIN_TEXT_MAX = 2000
JOIN_TEXT = (
    "How residents join, shown to them publicly: name offices, never a person's contact details. "
    "Empty: a text naming the municipality and police zone is generated in their language."
)


class NetworkCreate(BaseModel):
    """A new network: public facts and its area as a GeoJSON (Multi)Polygon in EPSG:4326.

    It starts as an ``idea``; where it lies (municipalities, police zones) is derived from the
    area, never given.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: NetworkKind
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    how_to_join: str | None = Field(default=None, max_length=JOIN_TEXT_MAX, description=JOIN_TEXT)
    geometry: GeoJSONGeometry


class NetworkUpdate(BaseModel):
    """A change of a network; ``version`` (or the ``If-Match`` header) names what it changes."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: NetworkKind | None = None
    status: NetworkStatus | None = None
    how_to_join: str | None = Field(default=None, max_length=JOIN_TEXT_MAX, description=JOIN_TEXT)
    geometry: GeoJSONGeometry | None = None
    reason: str | None = Field(default=None, max_length=500, description="Why the area changes.")


class ErrorBody(BaseModel):
    """The one error shape."""

    detail: str
    code: str


class AuditEntryPublic(BaseModel):
    """An entry of the audit trail."""

    id: int
    at: Any
    user_id: int | None
    user_name: str | None
    role: str | None
    action: str
    object_type: str
    object_id: str | None
    scope: str | None
    request_id: str | None
    client: str | None
    outcome: str
    details: dict | None


class AuditPage(BaseModel):
    """A page of the audit trail."""

    total: int
    entries: list[AuditEntryPublic]


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 413, 422, 428, 503)
}
