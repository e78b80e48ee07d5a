"""Planning a network (pure): graded findings, the lifecycle of the 2019 circular, clip and snap.

The lifecycle follows the ministerial circular of 2019 on BIN / BIN-Z: an idea is prepared with
the local authority and the police, presented at an information evening, laid down in a charter
signed by coordinator, police and local authority (and sent to FPS Home Affairs), then active; an
active network may fall dormant or be suspended, and ends merged into another or dissolved.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from bingeo.errors import IllegalTransition, InvalidGeometry, InvalidInput
from bingeo.members import EMAIL, LANGUAGES, PHONE
from bingeo.vocabulary import ContactRole, NetworkKind, NetworkStatus

# Slivers smaller than this are rounding noise of overlay operations, not area.
NOISE_M2 = 0.01
# Part of a proposal outside the planner's municipality that is tolerated (drawing precision).
OUTSIDE_TOLERANCE_M2 = 1.0
OUTSIDE_BLOCKING_SHARE = 0.01


class Severity(enum.StrEnum):
    """How a finding weighs: a blocking finding stops a proposal from being saved."""

    blocking = "blocking"
    warning = "warning"
    info = "info"


@dataclass(frozen=True)
class Finding:
    """One graded observation of a validation report."""

    severity: Severity
    code: str
    message: str


@dataclass
class ReportFacts:
    """The figures a validation report is graded on."""

    area_m2: float
    addresses_inside: int
    planner_nis_code: str | None = None
    municipalities: Mapping[str, float] = field(default_factory=dict)  # code -> overlap m²
    police_zones: Iterable[str] = ()
    overlaps: Iterable[tuple[str, float, int]] = ()  # (network label, overlap m², addresses)
    addresses_covered_elsewhere: int = 0
    members_inside: int = 0
    repairs: Iterable[str] = ()
    municipality_boundaries_loaded: bool = True


def grade(facts: ReportFacts) -> list[Finding]:
    """Every finding of a report, blocking first."""
    findings: list[Finding] = []
    block = Severity.blocking
    warn = Severity.warning
    if facts.area_m2 <= NOISE_M2:
        findings.append(Finding(block, "empty", "the proposed area is empty"))
    elif facts.addresses_inside == 0:
        findings.append(Finding(block, "no_address", "no located address lies inside the area"))
    if facts.planner_nis_code:
        if not facts.municipality_boundaries_loaded:
            findings.append(
                Finding(
                    warn,
                    "municipality_unknown",
                    "no municipality boundaries are loaded: the area could not be checked "
                    f"against municipality {facts.planner_nis_code}",
                )
            )
        else:
            inside = facts.municipalities.get(facts.planner_nis_code, 0.0)
            outside = max(facts.area_m2 - inside, 0.0)
            if outside > OUTSIDE_TOLERANCE_M2:
                share = outside / facts.area_m2 if facts.area_m2 else 1.0
                severity = block if share > OUTSIDE_BLOCKING_SHARE else warn
                findings.append(
                    Finding(
                        severity,
                        "outside_municipality",
                        f"{outside:.0f} m² ({share:.1%}) lies outside municipality "
                        f"{facts.planner_nis_code}",
                    )
                )
    crossed = [code for code, m2 in facts.municipalities.items() if m2 > OUTSIDE_TOLERANCE_M2]
    if len(crossed) > 1:
        findings.append(
            Finding(
                warn,
                "crosses_municipality_border",
                f"the area crosses municipalities {', '.join(sorted(crossed))}",
            )
        )
    zones = sorted(set(facts.police_zones))
    if len(zones) > 1:
        findings.append(
            Finding(
                warn,
                "crosses_police_zone_border",
                f"the area crosses police zones {', '.join(zones)}",
            )
        )
    for label, overlap_m2, addresses in facts.overlaps:
        findings.append(
            Finding(
                warn,
                "overlap",
                f"overlaps {label}: {overlap_m2:.0f} m², {addresses} addresses in both",
            )
        )
    if facts.addresses_covered_elsewhere:
        findings.append(
            Finding(
                warn,
                "addresses_covered",
                f"{facts.addresses_covered_elsewhere} addresses inside are already covered "
                "by another network",
            )
        )
    if facts.members_inside:
        findings.append(
            Finding(
                Severity.info,
                "members_inside",
                f"{facts.members_inside} members of existing networks live inside the area",
            )
        )
    for repair in facts.repairs:
        findings.append(Finding(warn, "repaired", repair))
    order = {Severity.blocking: 0, Severity.warning: 1, Severity.info: 2}
    return sorted(findings, key=lambda f: order[f.severity])


# Lifecycle -------------------------------------------------------------------------------------

S = NetworkStatus


class FactType(enum.StrEnum):
    """Kinds of lifecycle facts."""

    date = "date"
    text = "text"
    boolean = "boolean"
    count = "count"
    network = "network"  # the id of another network


# Every fact the lifecycle keeps, and its kind. None of them is personal data: the people
# themselves are network contacts (personal data, under their own access rule).
FACTS: dict[str, FactType] = {
    "consulted_local_authority_at": FactType.date,
    "consulted_police_at": FactType.date,
    "motives": FactType.text,
    "expectations": FactType.text,
    "goals": FactType.text,
    "information_evening_date": FactType.date,
    "invitations_exported_at": FactType.date,
    "attendance": FactType.count,
    "approved": FactType.boolean,
    "communication_plan": FactType.text,
    "financing_plan": FactType.text,
    "signed_by_coordinator_at": FactType.date,
    "signed_by_police_at": FactType.date,
    "signed_by_local_authority_at": FactType.date,
    "sent_to_fps_home_affairs_at": FactType.date,
    "reason": FactType.text,
    "merged_into": FactType.network,
}
# Facts that only bingeo itself records (the export of the invitation list).
SYSTEM_FACTS = frozenset({"invitations_exported_at"})
# Facts that belong to one step and must be given with it (kept in the step's record only):
# the reason to suspend is not the reason to dissolve.
STEP_FACTS = frozenset({"reason", "merged_into"})


@dataclass(frozen=True)
class RoleSummary:
    """What the lifecycle needs to know of a network's roles (no identities)."""

    coordinators: int = 0
    coordinators_adult_and_screened: int = 0
    police_officers: int = 0
    local_authority: int = 0
    self_employed: int = 0


@dataclass(frozen=True)
class Step:
    """A legal transition and the facts (and roles) it needs."""

    facts: tuple[str, ...] = ()
    given: tuple[str, ...] = ()
    needs_roles: bool = False
    description: str = ""


CHARTER_FACTS = (
    "communication_plan",
    "financing_plan",
    "signed_by_coordinator_at",
    "signed_by_police_at",
    "signed_by_local_authority_at",
    "sent_to_fps_home_affairs_at",
)
PREPARATION_FACTS = (
    "consulted_local_authority_at",
    "consulted_police_at",
    "motives",
    "expectations",
    "goals",
)
EVENING_FACTS = ("information_evening_date", "invitations_exported_at", "attendance", "approved")

TRANSITIONS: dict[NetworkStatus, dict[NetworkStatus, Step]] = {
    S.idea: {
        S.preparation: Step(description="consult the local authority and the police"),
        S.dissolved: Step(given=("reason",), description="the idea is dropped"),
    },
    S.preparation: {
        S.information_evening: Step(
            (*PREPARATION_FACTS, "information_evening_date"),
            description="consultation done; motives, expectations and goals recorded",
        ),
        S.dissolved: Step(given=("reason",), description="the plan is dropped"),
    },
    S.information_evening: {
        S.charter: Step(
            EVENING_FACTS,
            description="every address invited, the evening held and the network approved",
        ),
        S.dissolved: Step(given=("reason",), description="the plan is dropped"),
    },
    S.charter: {
        S.active: Step(
            CHARTER_FACTS,
            needs_roles=True,
            description="charter signed by coordinator, police and local authority, "
            "sent to FPS Home Affairs",
        ),
        S.dissolved: Step(given=("reason",), description="the plan is dropped"),
    },
    S.active: {
        S.dormant: Step(description="no activity"),
        S.suspended: Step(given=("reason",), description="suspended by police or local authority"),
    },
    S.dormant: {
        S.active: Step(needs_roles=True, description="revived"),
        S.merged: Step(given=("merged_into",), description="merged into another network"),
        S.dissolved: Step(given=("reason",), description="dissolved"),
    },
    S.suspended: {
        S.active: Step(given=("reason",), needs_roles=True, description="suspension lifted"),
        S.merged: Step(given=("merged_into",), description="merged into another network"),
        S.dissolved: Step(given=("reason",), description="dissolved"),
    },
    S.merged: {},
    S.dissolved: {},
}


def next_states(current: NetworkStatus) -> list[NetworkStatus]:
    """The states a network in ``current`` may go to."""
    return list(TRANSITIONS[NetworkStatus(current)])


def check_facts(facts: Mapping[str, object], *, system: bool = False) -> dict[str, object]:
    """Lifecycle facts checked and normalised (dates as ISO text); every problem reported."""
    problems: list[str] = []
    clean: dict[str, object] = {}
    for name, value in facts.items():
        kind = FACTS.get(name)
        if kind is None:
            problems.append(f"unknown fact {name!r} (known: {', '.join(sorted(FACTS))})")
            continue
        if name in SYSTEM_FACTS and not system:
            problems.append(f"{name} is recorded by bingeo itself")
            continue
        try:
            clean[name] = _fact_value(kind, value)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise InvalidInput("; ".join(problems))
    return clean


def check_transition(
    current: NetworkStatus,
    target: NetworkStatus,
    facts: Mapping[str, object],
    *,
    given: Mapping[str, object] | None = None,
    kind: NetworkKind = NetworkKind.BIN,
    roles: RoleSummary | None = None,
) -> None:
    """Raise ``IllegalTransition`` unless ``current -> target`` is legal with ``facts``/``roles``.

    ``facts`` are all facts known of the network (earlier steps and this one); ``given`` the
    facts given with this step (a reason, the network merged into).
    """
    given = given or {}
    current, target = NetworkStatus(current), NetworkStatus(target)
    step = TRANSITIONS[current].get(target)
    if step is None:
        allowed = ", ".join(s.value for s in next_states(current)) or "none (final state)"
        raise IllegalTransition(
            f"a network cannot go from {current.value} to {target.value}; "
            f"from {current.value} it may go to: {allowed}"
        )
    missing = [name for name in step.facts if _missing(facts.get(name))]
    missing += [name for name in step.given if _missing(given.get(name))]
    problems = [f"missing {', '.join(missing)}"] if missing else []
    if "approved" in step.facts and facts.get("approved") is False:
        problems.append("the information evening did not approve the network")
    if step.needs_roles:
        problems += role_problems(kind, roles or RoleSummary())
    if problems:
        raise IllegalTransition(
            f"{current.value} -> {target.value} ({step.description}) needs: " + "; ".join(problems)
        )


def role_problems(kind: NetworkKind, roles: RoleSummary) -> list[str]:
    """What an active network lacks in roles (coordinator adult and screened, police, ...)."""
    problems = []
    if roles.coordinators == 0:
        problems.append("a coordinator")
    elif roles.coordinators_adult_and_screened == 0:
        problems.append("a coordinator who is an adult and screened")
    if roles.police_officers == 0:
        problems.append("a mandated police officer")
    if NetworkKind(kind) == NetworkKind.BIN_Z:
        if roles.local_authority == 0:
            problems.append("a local authority contact (BIN-Z)")
        if roles.self_employed == 0:
            problems.append("at least one self-employed member (BIN-Z)")
    return problems


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _fact_value(kind: FactType, value: object) -> object:
    if kind == FactType.date:
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value[:10]).isoformat()
            except ValueError:
                pass
        raise ValueError(f"expected a date (YYYY-MM-DD), got {value!r}")
    if kind == FactType.text:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("expected a non-empty text")
        if len(value) > 10_000:
            raise ValueError("text longer than 10,000 characters")
        return value.strip()
    if kind == FactType.boolean:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return value


# Roles of a network -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactInput:
    """A person in a role of a network (personal data)."""

    role: ContactRole
    name: str
    email: str | None = None
    phone: str | None = None
    language: str = "nl"
    adult: bool | None = None
    screened: bool | None = None
    screened_at: dt.date | None = None
    organisation: str | None = None


def check_contact(contact: ContactInput, *, today: dt.date | None = None) -> ContactInput:
    """The contact with normalised fields, or ``InvalidInput`` listing every problem at once."""
    today = today or dt.date.today()
    problems = []
    try:
        role = ContactRole(contact.role)
    except ValueError:
        role = None
        problems.append(f"unknown role {contact.role!r}")
    name = (contact.name or "").strip()
    if not name:
        problems.append("name is empty")
    language = (contact.language or "").strip().lower()
    if language not in LANGUAGES:
        problems.append(f"language {contact.language!r} is not one of {', '.join(LANGUAGES)}")
    email = (contact.email or "").strip() or None
    phone = (contact.phone or "").strip() or None
    if email and not EMAIL.match(email):
        problems.append("email is not an e-mail address")
    if phone and not PHONE.match(phone):
        problems.append("phone is not a phone number")
    if not email and not phone:
        problems.append("an e-mail address or a phone number is needed")
    if contact.screened_at is not None and contact.screened is not True:
        problems.append("screened_at is given but screened is not true")
    if contact.screened_at is not None and contact.screened_at > today:
        problems.append("screened_at lies in the future")
    if contact.screened is True and contact.screened_at is None:
        problems.append("screened needs the date of the screening (screened_at)")
    organisation = (contact.organisation or "").strip() or None
    if role == ContactRole.self_employed and not organisation:
        problems.append("a self-employed member needs the name of the business (organisation)")
    if problems:
        raise InvalidInput("contact not valid: " + "; ".join(problems))
    return ContactInput(
        role=role,
        name=name,
        email=email,
        phone=phone,
        language=language,
        adult=contact.adult,
        screened=contact.screened,
        screened_at=contact.screened_at,
        organisation=organisation,
    )


# Geometry helpers ------------------------------------------------------------------------------


def clip(proposal: BaseGeometry, others: Iterable[BaseGeometry]) -> MultiPolygon:
    """``proposal`` without the parts of ``others``; an ``InvalidGeometry`` when nothing is left."""
    others = [g for g in others if g is not None and not g.is_empty]
    result = proposal.difference(shapely.union_all(others)) if others else proposal
    clipped = polygonal_parts(result)
    if clipped.is_empty:
        raise InvalidGeometry("nothing of the proposal is left after clipping")
    return clipped


def snap(
    proposal: BaseGeometry, references: Iterable[BaseGeometry], *, tolerance_m: float
) -> MultiPolygon:
    """``proposal`` with its edges moved onto reference boundaries where within ``tolerance_m``.

    The references (wijken or sectors) partition the ground. In each of them (and outside them
    all), the strips thinner than twice the tolerance between the proposal's edge and the
    boundary are flipped: a strip of the proposal poking into a reference area is cut off, a
    strip of a reference area the proposal nearly fills is added. Nothing farther than the
    tolerance from a reference boundary changes.
    """
    if tolerance_m <= 0:
        raise InvalidInput("tolerance_m must be positive")
    references = [g for g in references if g is not None and not g.is_empty]
    if not references:
        return polygonal_parts(proposal)
    union = shapely.union_all(references)
    frame = shapely.box(*proposal.union(union).bounds).buffer(tolerance_m * 4, join_style="mitre")
    regions = [*references, frame.difference(union)]
    # Cut first, then fill against what is left, so a strip cut off in one area does not make
    # its neighbour look nearly filled.
    remove: list[BaseGeometry] = []
    for region in regions:
        boundary_band = region.boundary.buffer(tolerance_m * 1.01)
        for piece in _parts(_thin(region.intersection(proposal), tolerance_m)):
            if piece.within(boundary_band):
                remove.append(piece)
    cut = proposal.difference(shapely.union_all(remove)) if remove else proposal
    add: list[BaseGeometry] = []
    for region in regions:
        for piece in _parts(_thin(region.difference(cut), tolerance_m)):
            if piece.distance(cut) < 1e-6:
                add.append(piece)
    snapped = polygonal_parts(cut.union(shapely.union_all(add)) if add else cut)
    if snapped.is_empty:
        raise InvalidGeometry("nothing of the proposal is left after snapping")
    return snapped


def polygonal_parts(geom: BaseGeometry) -> MultiPolygon:
    """The polygons of ``geom`` above noise size, as a valid MultiPolygon (maybe empty)."""
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polygons = [p for p in _parts(geom) if p.area > NOISE_M2]
    return MultiPolygon(polygons) if polygons else MultiPolygon()


def _parts(geom: BaseGeometry) -> list[Polygon]:
    if geom is None or geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    found: list[Polygon] = []
    for part in getattr(geom, "geoms", []):
        found.extend(_parts(part))
    return found


def _thin(geom: BaseGeometry, tolerance_m: float) -> BaseGeometry:
    # Morphological opening keeps what is at least 2 x tolerance wide; the rest is thin.
    if geom.is_empty:
        return geom
    opened = geom.buffer(-tolerance_m, join_style="mitre").buffer(tolerance_m, join_style="mitre")
    return geom.difference(opened)
