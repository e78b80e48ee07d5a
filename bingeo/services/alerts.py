"""Alerts: preview who an area reaches (no side effect), send with the outbox, cancel, status.

The preview answers from an in-process read model (address coordinates and prepared network
areas, reloaded when the data change); the send computes the same answer with the same pure
function (``bingeo.alerts.reach``) from PostGIS inside its transaction, and stores the alert, the
networks it reaches and the exact recipient list (the outbox) in that one transaction. The sender
sees counts and opaque ids, never contact details.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import shapely
from sqlalchemy import Engine

from bingeo.access import Action, Actor, Target, allowed
from bingeo.alerts import (
    DIRECT_SCOPES,
    EDGE_M,
    LANGUAGES,
    MODES,
    URGENCIES,
    AddressLabels,
    AlertArea,
    CapAlert,
    ContactRow,
    Filters,
    MemberRow,
    NetworkIndex,
    NetworkPeople,
    PointGrid,
    Reach,
    cap_xml,
    check_lengths,
    check_messages,
    circle_area,
    circle_from_lonlat,
    estimate_cost,
    idempotency_key,
    members_reached,
    plan_recipients,
    polygon_area,
    reach,
)
from bingeo.db import alerts as repo
from bingeo.db import matching as match_repo
from bingeo.db.engine import lone_reads
from bingeo.db.models import AlertStatus, NetworkKind, NetworkStatus
from bingeo.errors import IllegalTransition, InvalidInput, NotFound
from bingeo.services.audit import guard, record
from bingeo.services.memory import keep_alive_objects
from bingeo.settings import Settings

# The edge list shows at most this many addresses (the count is always complete).
EDGE_LIST_MAX = 500
# Zone code for networks without a police zone: only admins reach them.
NO_ZONE = "unknown"


@dataclass(frozen=True)
class AlertRequest:
    """What a police officer asks: where, to whom, how, and what to say."""

    area: AlertArea
    messages: dict[str, str]
    mode: str = "relay"
    filters: Filters = field(default_factory=Filters)
    direct_scope: str = "area"
    headline: dict[str, str] = field(default_factory=dict)
    urgency: str = "expected"
    reason: str = ""
    include_address_ids: tuple[int, ...] = ()
    exclude_address_ids: tuple[int, ...] = ()


def parse_target(engine: Engine, spec: dict, settings: Settings) -> AlertArea:
    """An alert area from ``{"area": GeoJSON}``, ``{"circle": {"lon", "lat", "radius_m"}}``,
    ``{"address_id", "radius_m"}`` or ``{"address": "free text", "radius_m"}``."""
    if not isinstance(spec, dict):
        raise InvalidInput("target must be an object")
    given = [k for k in ("area", "circle", "address_id", "address") if spec.get(k) is not None]
    if len(given) != 1:
        raise InvalidInput("target needs exactly one of area, circle, address_id or address")
    kind = given[0]
    if kind == "area":
        return polygon_area(spec["area"], limits=settings.geometry_limits())
    if kind == "circle":
        circle = spec["circle"]
        if not isinstance(circle, dict) or not {"lon", "lat", "radius_m"} <= set(circle):
            raise InvalidInput("circle needs lon, lat and radius_m")
        try:
            lon, lat = float(circle["lon"]), float(circle["lat"])
        except (TypeError, ValueError) as exc:
            raise InvalidInput("circle lon and lat must be numbers") from exc
        return circle_from_lonlat(lon, lat, circle["radius_m"])
    if spec.get("radius_m") is None:
        raise InvalidInput(f"a target by {kind} needs radius_m")
    if kind == "address_id":
        with engine.connect() as connection:
            row = match_repo.address_position(connection, int(spec["address_id"]))
        if row is None:
            raise NotFound(f"no address {spec['address_id']}")
        if row[1] is None:
            raise InvalidInput(f"address {spec['address_id']} has no position")
        return circle_area(
            row[1],
            row[2],
            spec["radius_m"],
            description=f"{float(spec['radius_m']):g} m around address {int(spec['address_id'])}",
        )
    from bingeo.services.lookup import lookup_address

    found = lookup_address(engine, str(spec["address"]), limit=1)
    if not found.found or found.best is None or found.best.lon is None:
        raise InvalidInput(f"address {spec['address']!r} not found: {found.message}")
    best = found.best
    label = f"{best.street} {best.house_number or ''}, {best.postcode or ''} {best.municipality}"
    return circle_from_lonlat(
        best.lon,
        best.lat,
        spec["radius_m"],
        description=f"{float(spec['radius_m']):g} m around {' '.join(label.split())}",
    )


def make_request(
    area: AlertArea,
    *,
    messages: dict[str, str],
    mode: str = "relay",
    kinds: list[str] | None = None,
    statuses: list[str] | None = None,
    direct_scope: str = "area",
    headline: dict[str, str] | None = None,
    urgency: str = "expected",
    reason: str = "",
    include_address_ids: list[int] | None = None,
    exclude_address_ids: list[int] | None = None,
) -> AlertRequest:
    """A checked request; every problem is reported at once."""
    problems = []
    if mode not in MODES:
        problems.append(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if direct_scope not in DIRECT_SCOPES:
        problems.append(f"direct_scope {direct_scope!r} is not one of {', '.join(DIRECT_SCOPES)}")
    if urgency not in URGENCIES:
        problems.append(f"urgency {urgency!r} is not one of {', '.join(URGENCIES)}")
    kinds = list(kinds or [k.value for k in NetworkKind])
    statuses = list(statuses or [NetworkStatus.active.value])
    bad_kinds = [k for k in kinds if k not in {m.value for m in NetworkKind}]
    bad_statuses = [s for s in statuses if s not in {m.value for m in NetworkStatus}]
    if bad_kinds:
        problems.append(f"unknown network kinds {bad_kinds}")
    if bad_statuses:
        problems.append(f"unknown network statuses {bad_statuses}")
    messages = {k: (v or "").strip() for k, v in (messages or {}).items() if (v or "").strip()}
    headline = {k: v.strip() for k, v in (headline or {}).items() if v and v.strip()}
    if set(headline) - set(LANGUAGES):
        problems.append(f"headline languages must be among {', '.join(LANGUAGES)}")
    if problems:
        raise InvalidInput("alert not valid: " + "; ".join(problems))
    check_messages(messages)
    check_lengths(messages, headline, sms=mode == "direct")
    return AlertRequest(
        area=area,
        messages=messages,
        mode=mode,
        filters=Filters(kinds=tuple(kinds), statuses=tuple(statuses)),
        direct_scope=direct_scope,
        headline=headline,
        urgency=urgency,
        reason=reason.strip(),
        include_address_ids=tuple(int(i) for i in include_address_ids or ()),
        exclude_address_ids=tuple(int(i) for i in exclude_address_ids or ()),
    )


def preview_alert(engine: Engine, actor: Actor, request: AlertRequest, settings: Settings) -> dict:
    """Who the alert would reach, what it would cost, and message checks; nothing is stored.

    Optimistic: the reach, members, coordinators and address labels come from the read model in
    memory, then one small statement reads the data stamp; when the stamp shows the model was
    out of date, the part that changed is reloaded and the preview computed again.
    """
    model = _MODELS.get(_key(engine)) or read_model(engine)
    with lone_reads(engine) as connection:
        for attempt in range(2):
            reached = _reach(request, model.networks)
            stamp = repo.data_stamp(connection)
            # Data changing all the time (a long import) gets one reload per preview, not more.
            if stamp == model.stamp or attempt:
                break
            model = read_model(engine, stamp=stamp)
    target = _target(actor, reached)
    guard(engine, actor, Action.send_alert, target, "alert_preview")
    members, contacts = model.people.of(reached.network_ids)
    return _summary(request, reached, members, contacts, settings, model.labels)


def send_alert(engine: Engine, actor: Actor, request: AlertRequest, settings: Settings) -> dict:
    """Store the alert with its exact recipient list and the outbox, in one transaction.

    The recipients are computed from PostGIS inside the transaction (not from the preview's
    read model) with the same rules as the preview.
    """
    if not request.reason:
        raise InvalidInput("an alert needs a reason (why it is sent), for the audit trail")
    try:
        return _send(engine, actor, request)
    except _Refused as refused:
        # Recorded in its own transaction, after the send's transaction was rolled back.
        guard(engine, actor, Action.send_alert, refused.target, "alert", refused.object_id)
        raise


def _send(engine: Engine, actor: Actor, request: AlertRequest) -> dict:
    with engine.begin() as connection:
        bounds = request.area.polygon.bounds
        shapes = repo.network_shapes(connection, bounds)
        # Wide enough for the edge band, where included addresses come from.
        margin = EDGE_M + 1.0
        minx, miny, maxx, maxy = bounds
        box = (minx - margin, miny - margin, maxx + margin, maxy + margin)
        points = match_repo.load_points(connection, boxes=[box])
        reached = _reach(request, NetworkIndex(shapes, points))
        target = _target(actor, reached)
        if not allowed(actor.principal, Action.send_alert, target):
            raise _Refused(target)
        members = repo.member_rows(connection, reached.network_ids)
        contacts = repo.coordinator_rows(connection, reached.network_ids)
        planned = plan_recipients(
            request.mode,
            reached,
            members=members,
            contacts=contacts,
            scope=request.direct_scope,
        )
        if not planned:
            nobody = "coordinator with an e-mail address" if request.mode == "relay" else "member"
            raise InvalidInput(
                f"the area reaches no {nobody} ({len(reached.networks)} networks reached); "
                "nothing to send"
            )
        area = request.area
        alert_id = repo.insert_alert(
            connection,
            {
                "created_by_user_id": actor.principal.user_id,
                "created_by_name": actor.principal.name,
                "police_zone_codes": sorted(target.police_zone_codes),
                "mode": request.mode,
                "urgency": request.urgency,
                "area": area.polygon,
                "circle_centre": area.centre_point,
                "radius_m": area.radius_m,
                "area_description": area.description,
                "filters": {
                    **request.filters.as_dict(),
                    "direct_scope": request.direct_scope,
                    "include_address_ids": list(request.include_address_ids),
                    "exclude_address_ids": list(request.exclude_address_ids),
                },
                "headline": request.headline,
                "messages": request.messages,
                "reason": request.reason,
                "status": AlertStatus.queued,
            },
        )
        repo.insert_alert_networks(
            connection,
            [
                {
                    "alert_id": alert_id,
                    "network_id": r.network.id,
                    "network_code": r.network.code,
                    "share_inside": r.share_inside,
                }
                for r in reached.networks
            ],
        )
        repo.insert_recipients(
            connection,
            [
                {
                    "alert_id": alert_id,
                    "kind": p.kind,
                    "contact_id": p.person_id if p.kind == "coordinator" else None,
                    "member_id": p.person_id if p.kind == "member" else None,
                    "network_id": p.network_id,
                    "channel": p.channel,
                    "language": p.language,
                    "reason": p.reason,
                    "idempotency_key": idempotency_key(alert_id, p.kind, p.person_id, p.channel),
                }
                for p in planned
            ],
        )
        counts = _recipient_counts(planned)
        record(
            connection,
            actor,
            "send",
            "alert",
            alert_id,
            target=target,
            details={
                "mode": request.mode,
                "reason": request.reason,
                "area": area.description,
                "networks": reached.network_ids,
                "recipients": counts,
            },
        )
    return {"id": alert_id, "status": AlertStatus.queued.value, "recipients": counts}


def alert_status(engine: Engine, actor: Actor, alert_id: int) -> dict:
    """An alert's facts and its deliveries counted per status, channel and kind."""
    with engine.connect() as connection:
        row = repo.get_alert(connection, alert_id)
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        guard(engine, actor, Action.send_alert, _alert_target(row), "alert", alert_id)
        networks = repo.alert_networks(connection, alert_id)
        counts = repo.recipient_counts(connection, alert_id)
    by_status: Counter = Counter()
    by_channel: dict[str, Counter] = {}
    by_kind: Counter = Counter()
    for status, channel, kind, count in counts:
        by_status[_value(status)] += count
        by_channel.setdefault(_value(channel), Counter())[_value(status)] += count
        by_kind[_value(kind)] += count
    return {
        "id": row.id,
        "status": _value(row.status),
        "mode": _value(row.mode),
        "urgency": _value(row.urgency),
        "created_at": row.created_at,
        "created_by": row.created_by_name,
        "cancelled_at": row.cancelled_at,
        "reason": row.reason,
        "area": _stored_area(row).as_dict(),
        "networks": [
            {"id": n.network_id, "code": n.network_code, "share_inside": n.share_inside}
            for n in networks
        ],
        "recipients": {
            "total": sum(by_status.values()),
            "by_status": dict(by_status),
            "by_channel": {k: dict(v) for k, v in by_channel.items()},
            "by_kind": dict(by_kind),
        },
    }


def cancel_alert(engine: Engine, actor: Actor, alert_id: int) -> dict:
    """Cancel an alert's deliveries that have not gone out yet."""
    try:
        return _cancel(engine, actor, alert_id)
    except _Refused as refused:
        guard(engine, actor, Action.send_alert, refused.target, "alert", alert_id)
        raise


def _cancel(engine: Engine, actor: Actor, alert_id: int) -> dict:
    with engine.begin() as connection:
        row = repo.get_alert(connection, alert_id, lock=True)
        if row is None:
            raise NotFound(f"no alert {alert_id}")
        target = _alert_target(row)
        if not allowed(actor.principal, Action.send_alert, target):
            raise _Refused(target, alert_id)
        if _value(row.status) in (AlertStatus.done.value, AlertStatus.cancelled.value):
            raise IllegalTransition(f"alert {alert_id} is {_value(row.status)}; too late to cancel")
        cancelled, out = repo.cancel_alert(connection, alert_id)
        record(
            connection,
            actor,
            "cancel",
            "alert",
            alert_id,
            target=target,
            details={"cancelled": cancelled, "already_out": out},
        )
    return {"id": alert_id, "status": "cancelled", "cancelled": cancelled, "already_out": out}


def alert_cap(engine: Engine, actor: Actor, alert_id: int, *, sender: str) -> str:
    """The alert as CAP 1.2 XML (one ``info`` per language, the area as polygon or circle)."""
    with engine.connect() as connection:
        row = repo.get_alert(connection, alert_id)
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    guard(engine, actor, Action.send_alert, _alert_target(row), "alert", alert_id)
    return cap_xml(
        CapAlert(
            id=row.id,
            sender=sender,
            sent=row.created_at,
            urgency=_value(row.urgency),
            area=_stored_area(row),
            messages=row.messages,
            headline=row.headline or {},
            cancelled=_value(row.status) == AlertStatus.cancelled.value,
        )
    )


# the read model of the preview -----------------------------------------------------------------


@dataclass(frozen=True)
class ReadModel:
    """Located addresses with their labels, networks, members and coordinators in memory, with
    the stamp of the data they came from: (versions of the place tables, versions of the people
    tables)."""

    stamp: tuple
    networks: NetworkIndex
    labels: AddressLabels
    people: NetworkPeople

    @property
    def points(self) -> PointGrid:
        """The located addresses."""
        return self.networks.points


_MODELS: dict[str, ReadModel] = {}
_LOCK = threading.Lock()


def read_model(engine: Engine, *, stamp: tuple | None = None) -> ReadModel:
    """The current read model of ``engine``'s database (the parts whose data changed reloaded).

    ``stamp`` (optional) is a data stamp the caller has just read, which saves reading it again.
    The stamp is read before the data, so a model is never newer in its stamp than in its data.
    """
    key = _key(engine)
    if stamp is None:
        with engine.connect() as connection:
            stamp = repo.data_stamp(connection)
    model = _MODELS.get(key)
    if model is not None and model.stamp == stamp:
        return model
    with _LOCK:
        model = _MODELS.get(key)
        if model is not None and model.stamp == stamp:
            return model
        with engine.connect() as connection:
            stamp = repo.data_stamp(connection)
            places, people = stamp
            if model is not None and model.stamp[0] == places:
                networks, labels = model.networks, model.labels
            else:
                # The labels come through a second connection while this one reads the points
                # and the index is built: the server and the client each work on both at once.
                with ThreadPoolExecutor(1) as pool:
                    labelled = pool.submit(_address_labels, engine)
                    points = match_repo.load_points(connection)
                    networks = NetworkIndex(repo.network_shapes(connection), points)
                    labels = labelled.result()
            if model is not None and model.stamp[1] == people:
                network_people = model.people
            else:
                network_people = NetworkPeople(
                    repo.member_rows(connection, None), repo.coordinator_rows(connection, None)
                )
        model = _MODELS[key] = ReadModel(
            stamp=stamp, networks=networks, labels=labels, people=network_people
        )
        keep_alive_objects()
        return model


def _address_labels(engine: Engine) -> AddressLabels:
    with engine.connect() as connection:
        return repo.address_labels(connection)


# private helpers -------------------------------------------------------------------------------


class _Refused(Exception):
    """Access refused inside a transaction: rolled back, then recorded and raised by guard."""

    def __init__(self, target: Target, object_id: object = None) -> None:
        super().__init__(target.describe())
        self.target = target
        self.object_id = object_id


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _reach(request: AlertRequest, networks: NetworkIndex) -> Reach:
    return reach(
        request.area,
        networks,
        request.filters,
        include=request.include_address_ids,
        exclude=request.exclude_address_ids,
    )


def _target(actor: Actor, reached: Reach) -> Target:
    # A network lying in several zones may be warned by the police of each of them.
    own = actor.principal.police_zone_code
    zones: set[str] = set()
    for r in reached.networks:
        lies_in = r.network.police_zone_codes
        zones |= {own} if own in lies_in else set(lies_in or [NO_ZONE])
    if not zones and actor.principal.police_zone_code:
        # Reaching nobody still needs an officer: judged against the caller's own zone.
        zones = {actor.principal.police_zone_code}
    return Target(police_zone_codes=frozenset(zones))


def _alert_target(row) -> Target:
    return Target(police_zone_codes=frozenset(row.police_zone_codes or [NO_ZONE]))


def _stored_area(row) -> AlertArea:
    polygon = shapely.from_wkb(bytes(row.area_wkb))
    centre = (row.centre_x, row.centre_y) if row.centre_x is not None else None
    return AlertArea(
        polygon=polygon,
        description=row.area_description,
        centre=centre,
        radius_m=row.radius_m,
    )


def _summary(
    request: AlertRequest,
    reached: Reach,
    members: list[MemberRow],
    contacts: list[ContactRow],
    settings: Settings,
    labels: AddressLabels,
) -> dict:
    members_in = members_reached(reached, members, scope=request.direct_scope)
    planned = plan_recipients(
        request.mode, reached, contacts=contacts, scope=request.direct_scope, members_in=members_in
    )
    members_by_network = Counter(m.network_id for m in members_in)
    network_ids = set(reached.network_ids)
    coordinators = [c for c in contacts if c.network_id in network_ids]
    coordinators_by_network = Counter(c.network_id for c in coordinators)
    channels = Counter(channel for m in members_in for channel in m.channels)
    edge_ids = reached.edge_ids[:EDGE_LIST_MAX]
    edge = [
        {
            "id": address_id,
            "street": street,
            "house_number": house_number,
            "box": box,
            "postcode": postcode,
            "side": "inside" if inside else "outside",
        }
        for address_id, street, house_number, box, postcode, inside in zip(
            edge_ids.tolist(),
            *labels.of(edge_ids),
            reached.edge_inside[:EDGE_LIST_MAX].tolist(),
            strict=True,
        )
    ]
    return {
        "area": request.area.as_dict(),
        "mode": request.mode,
        "direct_scope": request.direct_scope,
        "filters": request.filters.as_dict(),
        "networks": [
            {
                "id": r.network.id,
                "code": r.network.code,
                "name": r.network.name,
                "kind": r.network.kind,
                "status": r.network.status,
                "police_zone_code": (r.network.police_zone_codes or (None,))[0],
                "police_zone_codes": list(r.network.police_zone_codes),
                "share_inside": r.share_inside,
                "addresses_inside": r.addresses_inside,
                "members_reached": members_by_network.get(r.network.id, 0),
                "coordinators": coordinators_by_network.get(r.network.id, 0),
            }
            for r in reached.networks
        ],
        "networks_edge_only": [n.id for n in reached.adjacent],
        "addresses": {
            "inside_area": reached.inside_count,
            "inside_area_and_network": reached.in_network_count,
            "inside_area_approximate": reached.inside_approximate,
        },
        "members": {
            "total": len(members_in),
            "by_network": {str(k): v for k, v in sorted(members_by_network.items())},
            "by_channel": dict(sorted(channels.items())),
            "by_language": dict(sorted(Counter(m.language for m in members_in).items())),
        },
        "coordinators": {
            "total": len(coordinators),
            "with_email": sum(1 for c in coordinators if c.has_email),
            "without_email": sum(1 for c in coordinators if not c.has_email),
            "ids": [c.id for c in coordinators],
        },
        "recipients": _recipient_counts(planned),
        "edge": {
            "distance_m": EDGE_M,
            "total": int(len(reached.edge_ids)),
            "inside": int(np.count_nonzero(reached.edge_inside)),
            "addresses": edge,
            "truncated": len(reached.edge_ids) > EDGE_LIST_MAX,
        },
        "cost": estimate_cost(
            planned,
            request.messages,
            sms_cost_eur=settings.sms_cost_eur,
            voice_cost_eur=settings.voice_cost_eur,
        ),
        "message": check_messages(request.messages, request.headline),
    }


def _recipient_counts(planned: list) -> dict:
    return {
        "total": len(planned),
        "by_channel": dict(sorted(Counter(p.channel for p in planned).items())),
        "by_language": dict(sorted(Counter(p.language for p in planned).items())),
        "by_kind": dict(sorted(Counter(p.kind for p in planned).items())),
    }


def _value(value: object) -> str:
    return str(getattr(value, "value", value))


def actor_for_user(engine: Engine, user_name: str) -> Actor:
    """The actor of a named user, for the command line (the audit trail names the sender)."""
    from bingeo.access import Principal
    from bingeo.db import users as user_repo
    from bingeo.db.models import Role
    from bingeo.errors import Forbidden

    with engine.connect() as connection:
        user = user_repo.user_by_name(connection, user_name)
    if user is None:
        raise NotFound(f"no user {user_name!r}")
    if user.disabled:
        raise Forbidden(f"user {user_name!r} is disabled")
    principal = Principal(
        user_id=user.id,
        name=user.name,
        role=Role(user.role),
        police_zone_code=user.police_zone_code,
        nis_code=user.nis_code,
        network_id=user.network_id,
    )
    return Actor(principal=principal, client="cli")
