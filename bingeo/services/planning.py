"""Planning a network: proposals and their validation report, clip and snap, the lifecycle,
roles, area versions, the invitation list and dormant detection.

Validation, clipping and snapping have no side effect; saving a proposal creates a network in
the state ``idea`` through ``bingeo.services.networks.create_network``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyogrio
import shapely
from dateutil.relativedelta import relativedelta
from geoalchemy2.shape import from_shape
from shapely import wkb as shapely_wkb
from shapely.geometry import MultiPolygon
from sqlalchemy import Engine

from bingeo.access import POLICE, Action, Actor, Principal, Target, allowed
from bingeo.db import coverage as coverage_repo
from bingeo.db import matching as match_repo
from bingeo.db import planning as repo
from bingeo.db.models import SRID, AreaLevel, NetworkKind, NetworkStatus, Role
from bingeo.errors import Conflict, InvalidGeometry, InvalidInput, NotAuthenticated, NotFound
from bingeo.files import read_geofile
from bingeo.geometry import (
    GeometryLimits,
    geojson_to_storage,
    geometry_outside_belgium,
    polygonal,
    storage_to_geojson,
    to_storage,
)
from bingeo.networks import PLACE_LEVELS, shares_area
from bingeo.planning import (
    OUTSIDE_TOLERANCE_M2,
    STEP_FACTS,
    TRANSITIONS,
    ContactInput,
    Finding,
    ReportFacts,
    Severity,
    check_contact,
    check_facts,
    check_transition,
    clip,
    grade,
    polygonal_parts,
    role_problems,
    snap,
)
from bingeo.privacy import people_count
from bingeo.services.audit import guard, record
from bingeo.services.matching import CLOSED
from bingeo.services.networks import NetworkRecord, create_network, get_network, network_target
from bingeo.services.streetlists import derive_from_street_list

# Labels of the addresses involved in an overlap listed in a report (the count is complete).
MAX_LISTED_ADDRESSES = 500
NEAREST = 5
SNAP_LEVELS = (AreaLevel.wijk, AreaLevel.sector)
INVITATION_COLUMNS = ("street", "house_number", "box", "postcode", "municipality")


@dataclass
class Proposal:
    """A proposed area (EPSG:31370), where it came from and what was done to read it."""

    geometry: MultiPolygon
    source: str
    repairs: list[str] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Everything a planner needs to judge a proposed area; ``findings`` are graded."""

    source: str
    geometry: MultiPolygon
    area_m2: float
    addresses_inside: int
    address_ids: list[int]
    members_inside: int | str  # suppressed as "< 5" for roles that may not read members
    members_by_network: dict[int, int | str]
    outside_scope_m2: float  # the part outside the caller's scope, of which nothing is reported
    overlaps: list[dict]
    addresses_covered_elsewhere: int
    municipalities: list[dict]
    police_zones: list[dict]
    sectors: list[dict]
    wijken: list[dict]
    nearest_networks: list[dict]
    repairs: list[str]
    findings: list[Finding]

    @property
    def blocking(self) -> list[Finding]:
        """The findings that stop the proposal from being saved."""
        return [f for f in self.findings if f.severity == Severity.blocking]

    @property
    def valid(self) -> bool:
        """True when nothing blocks the proposal."""
        return not self.blocking

    def as_dict(self, *, geometry: bool = True) -> dict[str, object]:
        """The report as plain data (geometry as GeoJSON, EPSG:4326)."""
        data = {
            "valid": self.valid,
            "source": self.source,
            "area_m2": round(self.area_m2, 1),
            "addresses_inside": self.addresses_inside,
            "members_inside": self.members_inside,
            "members_by_network": {str(k): v for k, v in self.members_by_network.items()},
            "outside_scope_m2": self.outside_scope_m2,
            "overlaps": self.overlaps,
            "addresses_covered_elsewhere": self.addresses_covered_elsewhere,
            "municipalities": self.municipalities,
            "police_zones": self.police_zones,
            "sectors": self.sectors,
            "wijken": self.wijken,
            "nearest_networks": self.nearest_networks,
            "repairs": self.repairs,
            "findings": [
                {"severity": f.severity.value, "code": f.code, "message": f.message}
                for f in self.findings
            ],
        }
        if geometry:
            data["geometry"] = storage_to_geojson(self.geometry)
        return data


# Proposals -------------------------------------------------------------------------------------


def proposal_from_geojson(data: dict | str, *, limits: GeometryLimits | None = None) -> Proposal:
    """A drawn area (GeoJSON Polygon/MultiPolygon or Feature, EPSG:4326)."""
    geometry, warnings = geojson_to_storage(data, label="geometry", limits=limits)
    return Proposal(geometry=geometry, source="drawn", repairs=warnings)


def proposal_from_file(
    path: Path, *, layer: str | None = None, limits: GeometryLimits | None = None
) -> Proposal:
    """The union of the polygons of a GeoJSON, GeoPackage, zipped Shapefile or KML file."""
    path = Path(path)
    limits = limits or GeometryLimits()
    frames = []
    if layer is None and path.suffix.lower() == ".kml":
        # KML keeps features in folders that GDAL reads as layers: take them all.
        try:
            layers = [name for name, _ in pyogrio.list_layers(str(path))]
        except Exception as exc:  # GDAL errors have no stable hierarchy
            raise InvalidInput(f"{path.name}: not a readable KML file ({exc})") from exc
        frames = [read_geofile(path, layer=name) for name in layers]
    else:
        frames = [read_geofile(path, layer=layer)]
    repairs: list[str] = []
    parts = []
    vertices = sum(int(shapely.get_num_coordinates(f.geometry.values).sum()) for f in frames)
    if vertices > limits.max_vertices:
        # Before any repair or union: their cost grows with the vertices.
        raise InvalidGeometry(f"{path.name}: more than {limits.max_vertices} vertices; simplify it")
    for frame in frames:
        frame = to_storage(frame, source=path.name)
        for position, geom in enumerate(frame.geometry, start=1):
            if (
                geom is None
                or geom.is_empty
                or geom.geom_type
                not in (
                    "Polygon",
                    "MultiPolygon",
                    "GeometryCollection",
                )
            ):
                continue
            part, reason = polygonal(geom, label=f"{path.name}: feature {position}", limits=limits)
            if reason:
                repairs.append(
                    f"{path.name}: feature {position}: invalid polygon repaired ({reason})"
                )
            parts.append(part)
    if not parts:
        raise InvalidGeometry(f"{path.name}: no polygon in the file")
    geometry, reason = polygonal(shapely.union_all(parts), label=path.name, limits=limits)
    if reason:
        repairs.append(f"{path.name}: union repaired ({reason})")
    _check_limits(geometry, limits, label=path.name)
    return Proposal(geometry=geometry, source=f"file {path.name}", repairs=repairs)


def proposal_from_street_list(
    engine: Engine,
    streets_csv: Path,
    *,
    network: str | None = None,
    networks_csv: Path | None = None,
) -> Proposal:
    """The area of one network of a published street list (``network`` names it if several)."""
    result = derive_from_street_list(
        engine, streets_csv, networks_csv=networks_csv, only={network} if network else None
    )
    codes = sorted({a.network for a in result.areas})
    if not codes:
        raise InvalidInput(
            f"no network {network!r} in the street list" if network else "the street list is empty"
        )
    if len(codes) > 1:
        raise InvalidInput(f"the street list holds several networks; choose one of {codes}")
    derived = result.areas[0]
    notes = [
        Finding(Severity.warning, f"street_list_{f.kind}", f.message)
        for f in result.findings
        if f.network == derived.network
    ]
    if derived.area is None:
        raise InvalidGeometry(
            f"street list {derived.network}: no area could be derived"
            + (f" ({'; '.join(n.message for n in notes)})" if notes else "")
        )
    geometry, _ = polygonal(derived.area, label=derived.network)
    return Proposal(geometry=geometry, source=f"street list {derived.network}", notes=notes)


def validate(
    engine: Engine, actor: Actor, proposal: Proposal, *, network_id: int | None = None
) -> ValidationReport:
    """The validation report of a proposed area; writes nothing.

    ``network_id`` names the network being redrawn, left out of overlaps and coverage.
    """
    geometry = proposal.geometry
    geom = from_shape(geometry, srid=SRID)
    principal = actor.principal
    with engine.connect() as connection:
        # Where the whole area lies (public facts); sectors and wijken of the part seen below.
        by_level: dict[AreaLevel, list] = {}
        for row in repo.areas_crossed(connection, geom, list(PLACE_LEVELS)):
            by_level.setdefault(AreaLevel(row.level), []).append(row)
        municipalities = {
            r.code: float(r.overlap_m2)
            for r in by_level.get(AreaLevel.municipality, [])
            if r.overlap_m2 > OUTSIDE_TOLERANCE_M2
        }
        zones_by_nis = repo.zones_of(connection, sorted(municipalities))
        zones = {z for nis in municipalities for z in zones_by_nis.get(nis, [])}
        zones |= {
            r.code
            for r in by_level.get(AreaLevel.police_zone, [])
            if r.overlap_m2 > OUTSIDE_TOLERANCE_M2
        }
        boundaries_loaded = repo.has_areas(connection, AreaLevel.municipality)
        target = _report_target(actor, municipalities, zones_by_nis, zones)
        guard(engine, actor, Action.read_aggregates, target, "planning_report")
        # Counts, labels and overlaps come only from the part the caller may see.
        scope, scope_label = _scope_area(connection, principal)
        seen = geometry if scope is None else polygonal_parts(geometry.intersection(scope))
        hidden = MultiPolygon() if scope is None else geometry.difference(scope)
        hidden_m2 = float(hidden.area)
        seen_geom = geom if scope is None else from_shape(seen, srid=SRID)
        if seen.area:
            for row in repo.areas_crossed(
                connection, seen_geom, [AreaLevel.sector, AreaLevel.wijk]
            ):
                by_level.setdefault(AreaLevel(row.level), []).append(row)

        points = match_repo.load_points(connection, boxes=[seen.bounds]) if seen.area else None
        inside = points.covered_by(seen) if points is not None else []
        inside_ids = sorted(int(i) for i in inside)
        covered = repo.covered_elsewhere(connection, inside_ids, exclude=network_id)
        members = repo.members_at(connection, inside_ids, exclude=network_id)
        overlapping = (
            repo.overlapping_networks(connection, seen_geom, exclude=network_id)
            if seen.area
            else []
        )
        overlaps = []
        for row in overlapping:
            shared = covered.get(row.id, [])
            if not shares_area(
                row.overlap_m2, len(shared), shared_perimeter_m=row.overlap_perimeter_m
            ):
                continue  # touching only
            labels = repo.address_labels(connection, shared[:MAX_LISTED_ADDRESSES])
            overlaps.append(
                {
                    "network_id": row.id,
                    "code": row.code,
                    "name": row.name,
                    "kind": row.kind.value,
                    "status": row.status.value,
                    "overlap_m2": round(float(row.overlap_m2), 1),
                    "addresses": len(shared),
                    "address_ids": shared,
                    "address_labels": [_label(a) for a in labels],
                }
            )
        nearest = repo.nearest_networks(
            connection, geom, limit=NEAREST, exclude=[network_id] if network_id else []
        )
        # Members are people: the figures are aggregates per network, suppressed below 5 for
        # roles that may not read members, and the read is audited.
        exact = allowed(principal, Action.read_personal, target)
        members_inside = sum(members.values())
        if members:
            with engine.begin() as audit:
                record(
                    audit,
                    actor,
                    Action.read_aggregates.value,
                    "planning_report_members",
                    target=target,
                    details={"networks": len(members), "members": members_inside},
                )
    elsewhere = {a for network, ids in covered.items() for a in ids}
    open_overlaps = [o for o in overlaps if NetworkStatus(o["status"]) not in CLOSED]
    planner_nis = principal.nis_code if principal.role == Role.municipality_planner else None
    notes = list(proposal.notes)
    # A strip of boundary noise (an area drawn along the border) is not "outside".
    if shares_area(hidden_m2, 0, shared_perimeter_m=hidden.length):
        notes.append(
            Finding(
                Severity.warning,
                "outside_scope",
                f"{hidden_m2:.0f} m² lie outside your scope {scope_label}: nothing is "
                "reported there",
            )
        )
    findings = [
        *grade(
            ReportFacts(
                area_m2=float(geometry.area),
                addresses_inside=len(inside_ids),
                planner_nis_code=planner_nis,
                municipalities=municipalities,
                police_zones=zones,
                overlaps=[
                    (f"{o['name']} ({o['code']}, {o['status']})", o["overlap_m2"], o["addresses"])
                    for o in open_overlaps
                ],
                addresses_covered_elsewhere=len(elsewhere),
                members_inside=people_count(members_inside, exact=exact),
                repairs=proposal.repairs,
                municipality_boundaries_loaded=boundaries_loaded,
            )
        ),
        *notes,
    ]
    order = {Severity.blocking: 0, Severity.warning: 1, Severity.info: 2}
    findings.sort(key=lambda f: order[f.severity])
    return ValidationReport(
        source=proposal.source,
        geometry=geometry,
        area_m2=float(geometry.area),
        addresses_inside=len(inside_ids),
        address_ids=inside_ids,
        members_inside=people_count(members_inside, exact=exact),
        members_by_network={n: people_count(c, exact=exact) for n, c in members.items()},
        outside_scope_m2=round(hidden_m2, 1),
        overlaps=overlaps,
        addresses_covered_elsewhere=len(elsewhere),
        municipalities=_areas(by_level.get(AreaLevel.municipality, [])),
        police_zones=_zones(zones, by_level.get(AreaLevel.police_zone, [])),
        sectors=_areas(by_level.get(AreaLevel.sector, [])),
        wijken=_areas(by_level.get(AreaLevel.wijk, [])),
        nearest_networks=[
            {
                "network_id": r.id,
                "code": r.code,
                "name": r.name,
                "status": r.status.value,
                "distance_m": round(float(r.distance_m), 1),
            }
            for r in nearest
        ],
        repairs=list(proposal.repairs),
        findings=findings,
    )


def clip_proposal(
    engine: Engine,
    actor: Actor,
    proposal: Proposal,
    against: list[int],
    *,
    network_id: int | None = None,
) -> tuple[Proposal, ValidationReport]:
    """The proposal without the areas of the networks ``against``, and its new report."""
    if not against:
        raise InvalidInput("name the networks to clip against")
    with engine.connect() as connection:
        rows = repo.networks_by_id(connection, sorted(set(against)))
    missing = sorted(set(against) - {r.id for r in rows})
    if missing:
        raise NotFound(f"no network {', '.join(map(str, missing))}")
    others = [shapely_wkb.loads(bytes(r.wkb)) for r in rows]
    clipped = clip(proposal.geometry, others)
    names = ", ".join(r.code for r in rows)
    result = Proposal(
        geometry=clipped,
        source=f"{proposal.source}, clipped against {names}",
        repairs=list(proposal.repairs),
        notes=list(proposal.notes),
    )
    return result, validate(engine, actor, result, network_id=network_id)


def snap_proposal(
    engine: Engine,
    actor: Actor,
    proposal: Proposal,
    *,
    level: AreaLevel = AreaLevel.wijk,
    tolerance_m: float = 10.0,
    network_id: int | None = None,
) -> tuple[Proposal, ValidationReport]:
    """The proposal with edges snapped to ``level`` boundaries within ``tolerance_m``."""
    level = AreaLevel(level)
    if level not in SNAP_LEVELS:
        raise InvalidInput(f"snap to wijk or sector boundaries, not {level.value}")
    if not 0 < tolerance_m <= 100:
        raise InvalidInput("tolerance_m must lie between 0 and 100 metres")
    search = from_shape(proposal.geometry.buffer(tolerance_m * 2), srid=SRID)
    with engine.connect() as connection:
        rows = repo.areas_crossed(connection, search, [level])
        references = repo.area_shapes(connection, [r.code for r in rows], level)
    if not references:
        raise InvalidInput(f"no {level.value} boundaries are loaded around the proposal")
    snapped = snap(proposal.geometry, references, tolerance_m=tolerance_m)
    result = Proposal(
        geometry=snapped,
        source=f"{proposal.source}, snapped to {level.value} boundaries ({tolerance_m:g} m)",
        repairs=list(proposal.repairs),
        notes=list(proposal.notes),
    )
    return result, validate(engine, actor, result, network_id=network_id)


def save_proposal(
    engine: Engine,
    actor: Actor,
    proposal: Proposal,
    *,
    name: str,
    kind: NetworkKind = NetworkKind.BIN,
    code: str | None = None,
) -> tuple[NetworkRecord, ValidationReport]:
    """Store the proposal as a network in the state ``idea``, unless a finding blocks it."""
    report = validate(engine, actor, proposal)
    if not report.valid:
        raise InvalidInput(
            "the proposal cannot be saved: " + "; ".join(f.message for f in report.blocking)
        )
    network = create_network(
        engine,
        actor,
        name=name,
        kind=NetworkKind(kind),
        geometry=proposal.geometry,
        status=NetworkStatus.idea,
        code=code,
        warnings=[f.message for f in report.findings if f.severity == Severity.warning],
    )
    return network, report


# Lifecycle -------------------------------------------------------------------------------------


def lifecycle_state(engine: Engine, actor: Actor, network_id: int) -> dict[str, object]:
    """State, recorded facts, history and the possible next steps of a network."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.read_aggregates, network.target, "lifecycle", network_id)
    with engine.connect() as connection:
        facts, members_changed_at = repo.lifecycle(connection, network_id)
        history = repo.transitions(connection, network_id)
        roles = repo.role_summary(connection, network_id)
    steps = []
    for target, step in TRANSITIONS[network.status].items():
        missing = [f for f in step.facts if facts.get(f) in (None, "")]
        if step.needs_roles:
            missing += role_problems(network.kind, roles)
        steps.append(
            {
                "to": target.value,
                "description": step.description,
                "needs": [*step.facts, *step.given],
                "missing": missing,
                "give_with_step": list(step.given),
            }
        )
    return {
        "network_id": network.id,
        "code": network.code,
        "kind": network.kind.value,
        "status": network.status.value,
        "version": network.version,
        "facts": facts,
        "roles": asdict(roles),
        "members_changed_at": members_changed_at,
        "next": steps,
        "history": [
            {
                "from": row.from_status.value,
                "to": row.to_status.value,
                "at": row.at,
                "by": row.by,
                "facts": row.facts or {},
            }
            for row in history
        ],
    }


def transition(
    engine: Engine,
    actor: Actor,
    network_id: int,
    *,
    to: NetworkStatus | str | None = None,
    facts: dict | None = None,
) -> dict[str, object]:
    """Record lifecycle ``facts`` and, when ``to`` is given, take the step to that state.

    The step is refused with ``IllegalTransition`` when it is not allowed from the current state
    or when a fact or role it needs is missing; then nothing is recorded.
    """
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_network, network.target, "lifecycle", network_id)
    given = check_facts(facts or {})
    target = NetworkStatus(to) if to else None
    if target is None and not given:
        raise InvalidInput("give a state to go to, facts to record, or both")
    kept = {k: v for k, v in given.items() if k not in STEP_FACTS}
    with engine.begin() as connection:
        stored, _ = repo.lifecycle(connection, network_id)
        known = {**stored, **kept}
        if target is not None:
            if target == NetworkStatus.merged and "merged_into" in given:
                _check_merge_target(connection, network_id, int(given["merged_into"]))
            check_transition(
                network.status,
                target,
                known,
                given=given,
                kind=network.kind,
                roles=repo.role_summary(connection, network_id),
            )
            if not repo.set_status(connection, network_id, network.status, target):
                raise Conflict(f"network {network_id} changed state meanwhile; reload it")
            repo.add_transition(
                connection,
                network_id,
                network.status,
                target,
                by=actor.principal.name,
                facts=given,
            )
        if kept:
            repo.save_facts(connection, network_id, known)
        record(
            connection,
            actor,
            "transition" if target else "lifecycle_facts",
            "network",
            network_id,
            target=network.target,
            details={
                "from": network.status.value,
                "to": target.value if target else None,
                "facts": sorted(given),
            },
        )
    return lifecycle_state(engine, actor, network_id)


def _check_merge_target(connection, network_id: int, other: int) -> None:
    if other == network_id:
        raise InvalidInput("a network cannot be merged into itself")
    rows = repo.networks_by_id(connection, [other])
    if not rows:
        raise NotFound(f"no network {other} to merge into")
    if rows[0].status in CLOSED:
        raise InvalidInput(f"network {other} is {rows[0].status.value}; merge into an open one")


# Versions and members outside ------------------------------------------------------------------


def list_versions(engine: Engine, actor: Actor, network_id: int) -> list[dict[str, object]]:
    """The current area and every previous one, newest first, with who, when and why."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.read_aggregates, network.target, "versions", network_id)
    with engine.connect() as connection:
        rows = repo.list_versions(connection, network_id)
    current = {
        "version": network.version,
        "current": True,
        "since": network.updated_at,
        "changed_by": None,
        "reason": None,
        "area_m2": round(network.area_m2, 1),
        "geometry": storage_to_geojson(network.geometry),
    }
    return [
        current,
        *(
            {
                "version": r.version,
                "current": False,
                "until": r.changed_at,
                "changed_by": r.changed_by,
                "reason": r.reason,
                "area_m2": round(float(r.area_m2), 1),
                "geometry": storage_to_geojson(shapely_wkb.loads(bytes(r.wkb))),
            }
            for r in rows
        ),
    ]


# The information evening -----------------------------------------------------------------------


def invitations_csv(engine: Engine, actor: Actor, network_id: int) -> tuple[str, int]:
    """Every address in the network's area as CSV, for the mailing of the information evening.

    An export of addresses (not of members); audited, and its date kept as a lifecycle fact.
    """
    network = get_network(engine, actor, network_id)
    action = _first_allowed(actor, (Action.write_network, Action.read_personal), network.target)
    guard(engine, actor, action, network.target, "invitations", network_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INVITATION_COLUMNS)
    with engine.begin() as connection:
        rows = repo.network_addresses(connection, network_id)
        for row in rows:
            writer.writerow([getattr(row, c) or "" for c in INVITATION_COLUMNS])
        stored, _ = repo.lifecycle(connection, network_id)
        stored["invitations_exported_at"] = dt.date.today().isoformat()
        repo.save_facts(connection, network_id, stored)
        record(
            connection,
            actor,
            "export",
            "invitations",
            network_id,
            target=network.target,
            details={"addresses": len(rows)},
        )
    return buffer.getvalue(), len(rows)


# Roles (personal data) -------------------------------------------------------------------------


def list_contacts(engine: Engine, actor: Actor, network_id: int) -> list[dict[str, object]]:
    """The people in the roles of a network with their contact details; the read is audited."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.read_personal, network.target, "contacts", network_id)
    with engine.begin() as connection:
        rows = repo.list_contacts(connection, network_id)
        record(
            connection,
            actor,
            "read",
            "contacts",
            network_id,
            target=network.target,
            details={"returned": len(rows)},
        )
    return [_contact(row) for row in rows]


def add_contact(engine: Engine, actor: Actor, network_id: int, contact: ContactInput) -> int:
    """Add a person in a role of a network; returns the contact id."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_personal, network.target, "contact")
    values = _contact_values(check_contact(contact))
    with engine.begin() as connection:
        contact_id = repo.add_contact(connection, network_id, values)
        record(
            connection,
            actor,
            "create",
            "contact",
            contact_id,
            target=network.target,
            details={"network_id": network_id, "role": values["role"].value},
        )
    return contact_id


def update_contact(
    engine: Engine, actor: Actor, network_id: int, contact_id: int, contact: ContactInput
) -> None:
    """Replace a contact of a network (e.g. to record the coordinator's screening)."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_personal, network.target, "contact", contact_id)
    values = _contact_values(check_contact(contact))
    with engine.begin() as connection:
        _own_contact(connection, network_id, contact_id)
        repo.update_contact(connection, contact_id, values)
        record(connection, actor, "update", "contact", contact_id, target=network.target)


def remove_contact(engine: Engine, actor: Actor, network_id: int, contact_id: int) -> None:
    """Remove a contact of a network."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_personal, network.target, "contact", contact_id)
    with engine.begin() as connection:
        _own_contact(connection, network_id, contact_id)
        repo.remove_contact(connection, contact_id)
        record(connection, actor, "delete", "contact", contact_id, target=network.target)


def _own_contact(connection, network_id: int, contact_id: int) -> None:
    row = repo.get_contact(connection, contact_id)
    if row is None or row.network_id != network_id:
        raise NotFound(f"no contact {contact_id} in network {network_id}")


def _contact_values(contact: ContactInput) -> dict[str, object]:
    return {name: getattr(contact, name) for name in repo.CONTACT_FIELDS}


def _contact(row) -> dict[str, object]:
    values = dict(row._mapping)
    values["role"] = values["role"].value
    return values


# Dormant detection -----------------------------------------------------------------------------


def dormant_networks(
    engine: Engine,
    actor: Actor,
    *,
    months: int,
    now: dt.datetime | None = None,
) -> list[dict[str, object]]:
    """Active networks with no message and no member change for ``months``, that the caller
    may see (admins all; police their zone; planners their municipality)."""
    if actor.principal.anonymous:
        raise NotAuthenticated("the list of dormant networks needs a valid bearer token")
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - relativedelta(months=months)
    with engine.connect() as connection:
        rows = repo.activity(connection, NetworkStatus.active)
        messages = repo.last_messages(connection)
    found = []
    for row in rows:
        target = network_target(row.id, row.nis_codes, row.police_zone_codes)
        if not allowed(actor.principal, Action.read_aggregates, target):
            continue
        member_change = _latest(row.members_changed_at, row.last_member_at)
        message = messages.get(row.id)
        # A network that never had a message nor a member counts from when it became active.
        since = _latest(member_change, message, row.status_since or row.created_at)
        if since <= cutoff:
            found.append(
                {
                    "network_id": row.id,
                    "code": row.code,
                    "name": row.name,
                    "kind": row.kind.value,
                    "nis_code": row.nis_code,
                    "police_zone_code": row.police_zone_code,
                    "last_member_change_at": member_change,
                    "last_message_at": message,
                    "active_since": row.status_since,
                    "quiet_since": since,
                }
            )
    return found


def _latest(*values: dt.datetime | None) -> dt.datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


# Helpers ---------------------------------------------------------------------------------------


def _report_target(
    actor: Actor,
    municipalities: dict[str, float],
    zones_by_nis: dict[str, list[str]],
    zones: set[str],
) -> Target:
    # A report is an aggregate of the place it covers: the caller's own municipality (or zone)
    # when the area reaches into it, else the municipality holding most of the area.
    principal = actor.principal
    ranked = sorted(municipalities, key=lambda code: -municipalities[code])
    if principal.role == Role.municipality_planner and (
        principal.nis_code in municipalities or not municipalities
    ):
        nis = principal.nis_code
    else:
        nis = ranked[0] if ranked else None
    if principal.role in POLICE and principal.police_zone_code in zones:
        zone = principal.police_zone_code
    else:
        zone = (zones_by_nis.get(nis) or [None])[0] if nis else None
    return network_target(None, [nis], [zone])


def _scope_area(connection, principal: Principal) -> tuple[MultiPolygon | None, str]:
    """The area a caller may see in a report (None: everything) and its name."""
    if principal.role == Role.admin:
        return None, "all"
    shapes: list = []
    label = principal.scope_text() or "none"
    if principal.role == Role.municipality_planner and principal.nis_code:
        shapes = repo.area_shapes(connection, [principal.nis_code], AreaLevel.municipality)
    elif principal.role in POLICE and principal.police_zone_code:
        zone = principal.police_zone_code
        shapes = repo.area_shapes(connection, [zone], AreaLevel.police_zone)
        if not shapes:
            members = coverage_repo.zone_municipalities(connection, zone)
            shapes = repo.area_shapes(connection, members, AreaLevel.municipality)
    # No boundary loaded: nothing can be shown as lying in the scope.
    return (shapely.union_all(shapes) if shapes else MultiPolygon()), label


def _first_allowed(actor: Actor, actions: tuple[Action, ...], target: Target) -> Action:
    for action in actions:
        if allowed(actor.principal, action, target):
            return action
    return actions[0]


def _check_limits(geometry: MultiPolygon, limits: GeometryLimits, *, label: str) -> None:
    vertices = int(shapely.get_num_coordinates(geometry))
    if vertices > limits.max_vertices:
        raise InvalidGeometry(f"{label}: more than {limits.max_vertices} vertices; simplify it")
    if geometry_outside_belgium(geometry):
        raise InvalidGeometry(f"{label}: coordinates outside Belgium")
    if geometry.area > limits.max_area_m2:
        raise InvalidGeometry(
            f"{label}: area of {geometry.area / 1e6:.1f} km² exceeds the limit of "
            f"{limits.max_area_m2 / 1e6:.1f} km²"
        )


def _areas(rows: list) -> list[dict[str, object]]:
    return [
        {
            "code": r.code,
            "name": r.name_nl,
            "nis_code": r.nis_code,
            "overlap_m2": round(float(r.overlap_m2), 1),
        }
        for r in rows
        if r.overlap_m2 > OUTSIDE_TOLERANCE_M2
    ]


def _zones(codes: set[str], rows: list) -> list[dict[str, object]]:
    names = {r.code: r.name_nl for r in rows}
    return [{"code": code, "name": names.get(code)} for code in sorted(codes)]


def _label(row) -> str:
    number = f" {row.house_number}" if row.house_number else ""
    box = f" bus {row.box}" if row.box else ""
    return f"{row.street}{number}{box}, {row.postcode or ''} {row.municipality or ''}".strip()
