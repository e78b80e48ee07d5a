"""The domain vocabulary: kinds, lifecycle states, roles, levels, channels and statuses.

Pure names, used by the core, the services, the API and the database mappings alike.
"""

from __future__ import annotations

import enum


class AreaLevel(enum.StrEnum):
    """Levels of reference areas, from the smallest to the largest."""

    sector = "sector"
    wijk = "wijk"
    deelgemeente = "deelgemeente"
    municipality = "municipality"
    police_zone = "police_zone"


class NetworkKind(enum.StrEnum):
    """BIN (residents) or BIN-Z (self-employed)."""

    BIN = "BIN"
    BIN_Z = "BIN-Z"


class NetworkStatus(enum.StrEnum):
    """Lifecycle states of a network (2019 circular)."""

    idea = "idea"
    preparation = "preparation"
    information_evening = "information_evening"
    charter = "charter"
    active = "active"
    dormant = "dormant"
    suspended = "suspended"
    merged = "merged"
    dissolved = "dissolved"


class Role(enum.StrEnum):
    """Roles of users; anonymous callers have no user."""

    admin = "admin"
    police_analyst = "police_analyst"
    police_officer = "police_officer"
    municipality_planner = "municipality_planner"
    coordinator = "coordinator"


class ContactRole(enum.StrEnum):
    """The people of a network whose contact details bingeo keeps."""

    coordinator = "coordinator"
    steering_group = "steering_group"
    police_officer = "police_officer"
    local_authority = "local_authority"
    self_employed = "self_employed"  # a member of a BIN-Z


class AlertMode(enum.StrEnum):
    """How an alert reaches people: through the coordinators, or straight to members."""

    relay = "relay"
    direct = "direct"


class AlertUrgency(enum.StrEnum):
    """CAP 1.2 urgency of an alert."""

    immediate = "immediate"
    expected = "expected"
    future = "future"
    unknown = "unknown"


class AlertStatus(enum.StrEnum):
    """Where an alert is: stored with its outbox, being delivered, done or cancelled."""

    queued = "queued"
    sending = "sending"
    done = "done"
    cancelled = "cancelled"


class RecipientKind(enum.StrEnum):
    """A coordinator (relay) or a member (direct)."""

    coordinator = "coordinator"
    member = "member"


class AlertChannel(enum.StrEnum):
    """Channels an alert is delivered by."""

    email = "email"
    sms = "sms"
    voice = "voice"


class DeliveryStatus(enum.StrEnum):
    """The state of one delivery in the outbox."""

    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"
