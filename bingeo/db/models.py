"""Typed SQLAlchemy 2 mappings of bingeo's tables (storage SRID 31370)."""

from __future__ import annotations

import datetime as dt
import enum

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bingeo.placement import METHODS as POSITION_METHODS
from bingeo.vocabulary import (
    AlertChannel,
    AlertMode,
    AlertStatus,
    AlertUrgency,
    AreaLevel,
    ContactRole,
    DeliveryStatus,
    NetworkKind,
    NetworkStatus,
    RecipientKind,
    Role,
)

SRID = 31370


class Base(DeclarativeBase):
    """Declarative base of every bingeo table."""


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda members: [m.value for m in members])


class ReferenceArea(Base):
    """A statistical sector, wijk, deelgemeente, municipality or police zone."""

    __tablename__ = "reference_areas"
    __table_args__ = (
        UniqueConstraint("level", "code", name="uq_reference_areas_level_code"),
        Index("ix_reference_areas_level_nis_code", "level", "nis_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[AreaLevel] = mapped_column(_enum(AreaLevel, "area_level"))
    code: Mapped[str] = mapped_column(String(32))
    name_nl: Mapped[str | None] = mapped_column(Text)
    name_fr: Mapped[str | None] = mapped_column(Text)
    nis_code: Mapped[str | None] = mapped_column(String(5))
    parent_code: Mapped[str | None] = mapped_column(String(32))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    imported_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class PoliceZoneMunicipality(Base):
    """Membership of a municipality (NIS code) in a police zone."""

    __tablename__ = "police_zone_municipalities"

    police_zone_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    nis_code: Mapped[str] = mapped_column(String(5), primary_key=True)


class Address(Base):
    """An address of a register and its position: the register's own (``position_method``
    NULL), an approximate one found from its street (``position_method`` says how,
    ``bingeo.placement``), or none (``geom`` NULL)."""

    __tablename__ = "addresses"
    __table_args__ = (
        Index("ix_addresses_nis_code_street", "nis_code", "street"),
        CheckConstraint(
            "position_method IS NULL OR (geom IS NOT NULL AND position_method IN ({}))".format(
                ", ".join(f"'{m.value}'" for m in POSITION_METHODS)
            ),
            name="ck_addresses_position_method",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Byte-wise collation: they are matched for equality (an order by them is only cosmetic),
    # and their indexes build several times faster than under the locale's rules.
    source_key: Mapped[str] = mapped_column(Text(collation="C"), unique=True)
    street: Mapped[str] = mapped_column(Text(collation="C"))
    house_number: Mapped[str | None] = mapped_column(Text)
    box: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(4))
    municipality: Mapped[str | None] = mapped_column(Text)
    nis_code: Mapped[str | None] = mapped_column(String(5))
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=True)
    position_method: Mapped[str | None] = mapped_column(String(16))


class Street(Base):
    """A street name of a municipality, as the address register spells it."""

    __tablename__ = "streets"
    __table_args__ = (
        UniqueConstraint("nis_code", "name", name="uq_streets_nis_code_name"),
        Index(
            "ix_streets_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_streets_name_norm_trgm",
            "name_norm",
            postgresql_using="gin",
            postgresql_ops={"name_norm": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nis_code: Mapped[str] = mapped_column(String(5), server_default="")
    name: Mapped[str] = mapped_column(Text)
    # Lower case, no accents, abbreviations expanded (bingeo.lookup); NULL until normalised.
    name_norm: Mapped[str | None] = mapped_column(Text)


class Postcode(Base):
    """A postcode and the municipality (NIS code, name as the register writes it) it serves."""

    __tablename__ = "postcodes"

    postcode: Mapped[str] = mapped_column(String(4), primary_key=True)
    nis_code: Mapped[str] = mapped_column(String(5), primary_key=True, server_default="")
    municipality: Mapped[str | None] = mapped_column(Text)


class Network(Base):
    """A BIN or BIN-Z with its area; ``version`` increases with every change."""

    __tablename__ = "networks"
    __table_args__ = (
        Index("ix_networks_nis_codes", "nis_codes", postgresql_using="gin"),
        Index("ix_networks_police_zone_codes", "police_zone_codes", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[NetworkKind] = mapped_column(_enum(NetworkKind, "network_kind"))
    status: Mapped[NetworkStatus] = mapped_column(_enum(NetworkStatus, "network_status"))
    # Where the area lies, derived from it and the reference areas (never given by a user):
    # every municipality and police zone it shares at least MIN_SHARED_M2 with, the main one
    # (holding most of the area) first and also in ``nis_code`` / ``police_zone_code``.
    nis_code: Mapped[str | None] = mapped_column(String(5))
    police_zone_code: Mapped[str | None] = mapped_column(String(32))
    nis_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(5)), server_default=text("'{}'"), default=list
    )
    police_zone_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{}'"), default=list
    )
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    # Public text for residents (whom to contact); None: a text is generated from the places.
    how_to_join: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class User(Base):
    """A person who logs in, with one role and the scope it applies to."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    police_zone_code: Mapped[str | None] = mapped_column(String(32))
    nis_code: Mapped[str | None] = mapped_column(String(5))
    network_id: Mapped[int | None] = mapped_column(ForeignKey("networks.id", ondelete="SET NULL"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # scrypt$n$r$p$salt$hash (hex); None: the user logs in with API tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(200))


class ApiToken(Base):
    """A bearer token of a user; only its SHA-256 hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """One access to personal data or one write: who, when, what, which scope, which request."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    user_id: Mapped[int | None] = mapped_column(Integer)
    user_name: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(128))
    scope: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16), server_default="allowed")
    details: Mapped[dict | None] = mapped_column(JSON)


class RefusalCount(Base):
    """Refused requests of callers without a valid token, counted per client address, kind and
    minute: only the first of each minute writes an audit entry, so that a flood cannot fill the
    audit trail. Rows older than a day are deleted."""

    __tablename__ = "refusal_counts"

    client: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(128), primary_key=True)
    minute: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, index=True
    )
    count: Mapped[int] = mapped_column(Integer)


class NetworkContact(Base):
    """Personal contact details of a person in a role of a network (personal data)."""

    __tablename__ = "network_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[int] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[ContactRole] = mapped_column(_enum(ContactRole, "contact_role"))
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(2), server_default="nl")
    # The coordinator must be an adult and screened by the police (2019 circular).
    adult: Mapped[bool | None] = mapped_column(Boolean)
    screened: Mapped[bool | None] = mapped_column(Boolean)
    screened_at: Mapped[dt.date | None] = mapped_column(Date)
    organisation: Mapped[str | None] = mapped_column(Text)  # business of a BIN-Z member


class AddressNetwork(Base):
    """An address covered by a network's area (boundary counts as inside).

    Derived from ``addresses`` and ``networks`` in the transaction that changes them, without
    foreign keys (their row checks made storing matches three times slower); a network's rows
    are deleted with it.
    """

    __tablename__ = "address_networks"

    network_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)


class Member(Base):
    """A member of a network, registered at a verified address (personal data)."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[int] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"), index=True)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(2), server_default="nl")
    channels: Mapped[list] = mapped_column(JSON)
    consent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # Set when an edit of the network's area leaves the member's address outside it.
    outside_area: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class NetworkVersion(Base):
    """A previous area of a network: kept on every change, with who, when and why."""

    __tablename__ = "network_versions"
    __table_args__ = (
        UniqueConstraint("network_id", "version", name="uq_network_versions_network_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    changed_by: Mapped[str | None] = mapped_column(String(128))
    changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    reason: Mapped[str | None] = mapped_column(Text)


class NetworkTransition(Base):
    """One lifecycle step of a network: from, to, when, by whom, with the facts given."""

    __tablename__ = "network_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[int] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[NetworkStatus] = mapped_column(_enum(NetworkStatus, "network_status"))
    to_status: Mapped[NetworkStatus] = mapped_column(_enum(NetworkStatus, "network_status"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    by: Mapped[str | None] = mapped_column(String(128))
    facts: Mapped[dict | None] = mapped_column(JSON)


class NetworkLifecycle(Base):
    """The lifecycle facts of a network (per state) and the time its members last changed."""

    __tablename__ = "network_lifecycle"

    network_id: Mapped[int] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True
    )
    facts: Mapped[dict | None] = mapped_column(JSON)
    # Kept by a trigger on members (migration 0004), whatever code changes them.
    members_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


# alerts (issue 7) ------------------------------------------------------------------------------


class Alert(Base):
    """A police message to the people of a drawn area: who sent it, when, how, to where."""

    __tablename__ = "alerts"
    __table_args__ = (Index("idx_alerts_area", "area", postgresql_using="gist"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)
    created_by_name: Mapped[str] = mapped_column(String(128))
    police_zone_codes: Mapped[list] = mapped_column(JSON)
    mode: Mapped[AlertMode] = mapped_column(_enum(AlertMode, "alert_mode"))
    urgency: Mapped[AlertUrgency] = mapped_column(_enum(AlertUrgency, "alert_urgency"))
    # A circle is stored as its polygon (for maps and shares) and its centre and radius (the
    # definition of inside: distance from the centre at most radius_m).
    area = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=False)
    circle_centre = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    radius_m: Mapped[float | None] = mapped_column(Float)
    area_description: Mapped[str] = mapped_column(Text)
    filters: Mapped[dict] = mapped_column(JSON)
    headline: Mapped[dict] = mapped_column(JSON)
    messages: Mapped[dict] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus, "alert_status"))
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AlertNetwork(Base):
    """A network an alert's area reaches, and the share of the network inside the area."""

    __tablename__ = "alert_networks"

    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    )
    # No foreign key: the history of an alert outlives the network.
    network_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_code: Mapped[str] = mapped_column(String(64))
    share_inside: Mapped[float] = mapped_column(Float)


class AlertRecipient(Base):
    """One delivery of an alert: the exact recipient, why, by which channel, and its state.

    The table is the outbox as well: the dispatcher claims due rows, marks them ``sending``
    before the network call and retries them with the same ``idempotency_key``.
    """

    __tablename__ = "alert_recipients"
    __table_args__ = (Index("ix_alert_recipients_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[RecipientKind] = mapped_column(_enum(RecipientKind, "recipient_kind"))
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("network_contacts.id", ondelete="SET NULL")
    )
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    network_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[AlertChannel] = mapped_column(_enum(AlertChannel, "alert_channel"))
    language: Mapped[str] = mapped_column(String(2))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), server_default="queued"
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    leased_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)


class AddressArea(Base):
    """The reference area of each located address per level (filled by the coverage service)."""

    __tablename__ = "address_areas"
    __table_args__ = (Index("ix_address_areas_level_area_id", "level", "area_id"),)

    level: Mapped[AreaLevel] = mapped_column(_enum(AreaLevel, "area_level"), primary_key=True)
    address_id: Mapped[int] = mapped_column(
        ForeignKey("addresses.id", ondelete="CASCADE"), primary_key=True
    )
    area_id: Mapped[int] = mapped_column(ForeignKey("reference_areas.id", ondelete="CASCADE"))


class AddressAreaState(Base):
    """What ``address_areas`` of a level was computed from, to know when it is stale."""

    __tablename__ = "address_area_state"

    level: Mapped[AreaLevel] = mapped_column(_enum(AreaLevel, "area_level"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(Text)
    refreshed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class LoginAttempt(Base):
    """One password login attempt, kept for the rate limit shared by every server process.

    Rows older than the limit's window serve no purpose and are deleted; the audit trail keeps
    the lasting record. ``outcome``: pending (being checked), failed, succeeded (attempts held
    back by the back-off are not kept).
    """

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_user_name_at", "user_name", "at"),
        Index("ix_login_attempts_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    user_name: Mapped[str] = mapped_column(String(128))
    client: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16), server_default="pending")


class DataVersion(Base):
    """The version of a table's data: a new number (never given twice) after every statement
    that writes it, set by a trigger in the writing transaction (migration 0012). Read models
    compare these numbers to know whether they are current."""

    __tablename__ = "data_versions"

    table_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
