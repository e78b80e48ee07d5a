"""Who may do what: the one place for bingeo's role and scope rules.

Every service asks ``authorize(actor, action, target)`` before it reads personal data or writes;
routes never decide access themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bingeo.errors import Forbidden, NotAuthenticated
from bingeo.vocabulary import Role


class Action(enum.StrEnum):
    """What a caller wants to do with a target."""

    read_public = "read_public"  # names, kinds, areas of networks; reference areas
    read_aggregates = "read_aggregates"  # counts and coverage figures, no identities
    read_personal = "read_personal"  # members, coordinators, contact details
    write_network = "write_network"  # create, change, delete a network and its roles
    write_personal = "write_personal"  # register, change, remove members and contacts
    send_alert = "send_alert"
    read_alerts = "read_alerts"  # police texts a network received (its coordinator, its police)
    admin = "admin"  # users, tokens, audit trail


@dataclass(frozen=True)
class Principal:
    """An authenticated user (or nobody: ``user_id`` None) with role and scope."""

    user_id: int | None = None
    name: str = "anonymous"
    role: Role | None = None
    police_zone_code: str | None = None
    nis_code: str | None = None
    network_id: int | None = None

    @property
    def anonymous(self) -> bool:
        """True for callers without a valid token."""
        return self.role is None

    def scope_text(self) -> str | None:
        """The caller's scope as audit text, e.g. ``police_zone:ipz93``."""
        parts = [
            f"police_zone:{self.police_zone_code}" if self.police_zone_code else None,
            f"municipality:{self.nis_code}" if self.nis_code else None,
            f"network:{self.network_id}" if self.network_id else None,
        ]
        return ",".join(p for p in parts if p) or None


ANONYMOUS = Principal()


@dataclass(frozen=True)
class Actor:
    """A principal acting within one request (for the audit trail)."""

    principal: Principal = ANONYMOUS
    request_id: str | None = None
    client: str | None = None


@dataclass(frozen=True)
class Target:
    """What an action applies to: a network, a municipality, a police zone, or the whole."""

    network_id: int | None = None
    nis_codes: frozenset[str] = field(default_factory=frozenset)
    police_zone_codes: frozenset[str] = field(default_factory=frozenset)

    def describe(self) -> str:
        """The target as audit text."""
        parts = []
        if self.network_id is not None:
            parts.append(f"network:{self.network_id}")
        parts += [f"municipality:{c}" for c in sorted(self.nis_codes)]
        parts += [f"police_zone:{c}" for c in sorted(self.police_zone_codes)]
        return ",".join(parts) or "all"


WHOLE = Target()
POLICE = (Role.police_analyst, Role.police_officer)


def allowed(principal: Principal, action: Action, target: Target = WHOLE) -> bool:
    """Whether ``principal`` may perform ``action`` on ``target``."""
    if action == Action.read_public:
        return True
    role = principal.role
    if role is None:
        return False
    if role == Role.admin:
        return True
    if action == Action.admin:
        return False
    if role in POLICE:
        in_zone = _in_scope(principal.police_zone_code, target.police_zone_codes, target)
        # Analysts work on aggregates and network areas, never on member identities, and
        # write nothing; officers reach people (members, coordinators) of their zone and send
        # alerts.
        if role == Role.police_analyst:
            return action in (Action.read_aggregates, Action.read_alerts) and in_zone
        officer_actions = (
            Action.read_aggregates,
            Action.read_personal,
            Action.write_personal,
            Action.send_alert,
            Action.read_alerts,
        )
        return action in officer_actions and in_zone
    if role == Role.municipality_planner:
        own = principal.nis_code
        if action == Action.write_network:
            # A planner draws and changes networks lying wholly in their municipality.
            return _within(own, target.nis_codes)
        return action == Action.read_aggregates and _in_scope(own, target.nis_codes, target)
    if role == Role.coordinator:
        own = principal.network_id is not None and target.network_id == principal.network_id
        allowed_actions = (
            Action.read_aggregates,
            Action.read_personal,
            Action.write_personal,
            Action.read_alerts,
        )
        return action in allowed_actions and own
    return False


def authorize(principal: Principal, action: Action, target: Target = WHOLE) -> None:
    """Raise ``NotAuthenticated`` or ``Forbidden`` unless ``allowed``."""
    if allowed(principal, action, target):
        return
    if principal.anonymous:
        raise NotAuthenticated(f"{action.value} needs a valid bearer token")
    raise Forbidden(
        f"role {principal.role.value} with scope {principal.scope_text() or 'none'} "
        f"may not {action.value} on {target.describe()}"
    )


def require_caller(principal: Principal) -> None:
    """Raise ``NotAuthenticated`` for an anonymous caller (before any work done for them)."""
    if principal.anonymous:
        raise NotAuthenticated("this operation needs a valid bearer token")


def allowed_somewhere(principal: Principal, action: Action) -> bool:
    """Whether ``principal`` may perform ``action`` on some place (their own municipality or
    police zone; anywhere for an admin): known before the place is, e.g. before a drawn area is
    parsed. The check on the actual place follows once it is known."""
    nis, zone = principal.nis_code, principal.police_zone_code
    own = Target(
        nis_codes=frozenset([nis] if nis else []),
        police_zone_codes=frozenset([zone] if zone else []),
    )
    return allowed(principal, action, own)


def authorize_somewhere(principal: Principal, action: Action) -> None:
    """Raise ``NotAuthenticated`` or ``Forbidden`` unless ``allowed_somewhere``."""
    if allowed_somewhere(principal, action):
        return
    if principal.anonymous:
        raise NotAuthenticated(f"{action.value} needs a valid bearer token")
    raise Forbidden(f"role {principal.role.value} may not {action.value} on any area")


def _within(own: str | None, codes: frozenset[str]) -> bool:
    # Every scope of the target is the caller's.
    return own is not None and bool(codes) and codes <= {own}


def _in_scope(own: str | None, codes: frozenset[str], target: Target) -> bool:
    # A network crossing a border belongs to both sides (for anything but changing its area);
    # any other target (a zone, a municipality, a drawn area) must lie wholly in the scope.
    if target.network_id is not None:
        return own is not None and own in codes
    return _within(own, codes)
