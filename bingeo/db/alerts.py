"""Repository of alerts, the networks they reach, and their recipients (the outbox)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.selectable import Select

from bingeo.alerts import LABEL_FIELDS, AddressLabels, ContactRow, MemberRow, NetworkShape
from bingeo.db.bulk import copy_out_table
from bingeo.db.models import (
    SRID,
    Address,
    Alert,
    AlertNetwork,
    AlertRecipient,
    AlertStatus,
    ContactRole,
    DeliveryStatus,
    Member,
    Network,
    NetworkContact,
)
from bingeo.db.versions import versions_of

ALERTS = Alert.__table__
ALERT_NETWORKS = AlertNetwork.__table__
RECIPIENTS = AlertRecipient.__table__
ADDRESSES = Address.__table__
NETWORKS = Network.__table__
MEMBERS = Member.__table__
CONTACTS = NetworkContact.__table__
# One bound array instead of a list of parameters: one statement text, prepared once.
_IDS = bindparam("ids", type_=ARRAY(BigInteger))


# reading what an area reaches ------------------------------------------------------------------


def network_shapes(
    connection: Connection, bounds: tuple[float, float, float, float] | None = None
) -> list[NetworkShape]:
    """Networks (all, or those whose extent meets ``bounds``, EPSG:31370) with their areas."""
    query = select(
        NETWORKS.c.id,
        NETWORKS.c.code,
        NETWORKS.c.name,
        NETWORKS.c.kind,
        NETWORKS.c.status,
        NETWORKS.c.police_zone_codes,
        func.ST_AsBinary(NETWORKS.c.geom),
    ).order_by(NETWORKS.c.id)
    if bounds is not None:
        query = query.where(NETWORKS.c.geom.op("&&")(func.ST_MakeEnvelope(*bounds, SRID)))
    rows = connection.execute(query).all()
    geoms = shapely.from_wkb([bytes(r[6]) for r in rows])
    return [
        NetworkShape(
            id=int(r[0]),
            code=r[1],
            name=r[2],
            kind=str(r[3].value if hasattr(r[3], "value") else r[3]),
            status=str(r[4].value if hasattr(r[4], "value") else r[4]),
            police_zone_codes=tuple(r[5]),
            geometry=g,
        )
        for r, g in zip(rows, geoms, strict=True)
    ]


def address_labels(connection: Connection) -> AddressLabels:
    """The labels of every located address, by one ``COPY`` (addresses are not personal data)."""
    text = pa.dictionary(pa.int32(), pa.string())
    table = copy_out_table(
        connection,
        select(ADDRESSES.c.id, *(ADDRESSES.c[name] for name in LABEL_FIELDS)).where(
            ADDRESSES.c.geom.is_not(None)
        ),
        {"id": pa.int64(), **dict.fromkeys(LABEL_FIELDS, text)},
    )
    fields = {}
    for name in LABEL_FIELDS:
        # Every chunk then codes against the same list of distinct values.
        column = table.column(name).unify_dictionaries()
        values = column.chunk(0).dictionary.to_pylist() if column.num_chunks else []
        codes = [chunk.indices.fill_null(-1).to_numpy() for chunk in column.chunks]
        fields[name] = (np.concatenate(codes) if codes else np.empty(0, np.int32), values)
    return AddressLabels(table.column("id").to_numpy(), fields)


# What the preview's read model is built from: where addresses and networks are, and who to reach.
PLACE_TABLES = (ADDRESSES.name, NETWORKS.name)
PEOPLE_TABLES = (MEMBERS.name, CONTACTS.name)


def data_stamp(connection: Connection) -> tuple:
    """The versions of the place tables and of the people tables (read-model freshness)."""
    return _stamp(connection.execute(select(*_STAMP)).one())


def member_rows(connection: Connection, network_ids: Sequence[int] | None) -> list[MemberRow]:
    """Members of the networks (``None``: of every network): ids, language and channels only."""
    return [_member(r) for r in _rows(connection, _member_query(), MEMBERS, network_ids)]


def coordinator_rows(connection: Connection, network_ids: Sequence[int] | None) -> list[ContactRow]:
    """Coordinators of the networks (``None``: of every network): ids, language, and whether an
    e-mail address is known."""
    return [_contact(r) for r in _rows(connection, _coordinator_query(), CONTACTS, network_ids)]


# storing and reading alerts --------------------------------------------------------------------


def insert_alert(connection: Connection, values: dict) -> int:
    """Insert an alert (``area`` and ``circle_centre`` as shapely geometries); returns its id."""
    values = dict(values)
    values["area"] = from_shape(values["area"], srid=SRID)
    if values.get("circle_centre") is not None:
        values["circle_centre"] = from_shape(values["circle_centre"], srid=SRID)
    return connection.execute(insert(ALERTS).values(**values).returning(ALERTS.c.id)).scalar_one()


def insert_alert_networks(connection: Connection, rows: list[dict]) -> None:
    """Insert the networks an alert reaches."""
    if rows:
        connection.execute(insert(ALERT_NETWORKS), rows)


def insert_recipients(connection: Connection, rows: list[dict]) -> None:
    """Insert the recipients (the outbox) of an alert."""
    if rows:
        connection.execute(insert(RECIPIENTS), rows)


def get_alert(connection: Connection, alert_id: int, *, lock: bool = False):
    """An alert with its area as WKB and its circle centre as x, y; None when unknown."""
    query = select(
        ALERTS,
        func.ST_AsBinary(ALERTS.c.area).label("area_wkb"),
        func.ST_X(ALERTS.c.circle_centre).label("centre_x"),
        func.ST_Y(ALERTS.c.circle_centre).label("centre_y"),
    ).where(ALERTS.c.id == alert_id)
    if lock:
        query = query.with_for_update(of=ALERTS)
    return connection.execute(query).first()


def alert_networks(connection: Connection, alert_id: int) -> list:
    """The networks an alert reaches (id, code, share inside)."""
    return connection.execute(
        select(ALERT_NETWORKS)
        .where(ALERT_NETWORKS.c.alert_id == alert_id)
        .order_by(ALERT_NETWORKS.c.network_id)
    ).all()


def recipient_counts(connection: Connection, alert_id: int) -> list:
    """(status, channel, kind, count) of an alert's recipients."""
    return connection.execute(
        select(RECIPIENTS.c.status, RECIPIENTS.c.channel, RECIPIENTS.c.kind, func.count())
        .where(RECIPIENTS.c.alert_id == alert_id)
        .group_by(RECIPIENTS.c.status, RECIPIENTS.c.channel, RECIPIENTS.c.kind)
    ).all()


def recipients(connection: Connection, alert_id: int) -> list:
    """An alert's recipients: opaque ids, channel, state; never contact details."""
    return connection.execute(
        select(
            RECIPIENTS.c.id,
            RECIPIENTS.c.kind,
            RECIPIENTS.c.contact_id,
            RECIPIENTS.c.member_id,
            RECIPIENTS.c.network_id,
            RECIPIENTS.c.channel,
            RECIPIENTS.c.language,
            RECIPIENTS.c.reason,
            RECIPIENTS.c.status,
            RECIPIENTS.c.attempts,
            RECIPIENTS.c.last_error,
            RECIPIENTS.c.sent_at,
        )
        .where(RECIPIENTS.c.alert_id == alert_id)
        .order_by(RECIPIENTS.c.id)
    ).all()


def cancel_alert(connection: Connection, alert_id: int) -> tuple[int, int]:
    """Cancel the still queued recipients and mark the alert cancelled.

    Returns (recipients cancelled, recipients already out: sending, sent or failed).
    """
    cancelled = connection.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.alert_id == alert_id, RECIPIENTS.c.status == DeliveryStatus.queued)
        .values(status=DeliveryStatus.cancelled, next_attempt_at=func.now())
    ).rowcount
    out = connection.execute(
        select(func.count()).where(
            RECIPIENTS.c.alert_id == alert_id, RECIPIENTS.c.status != DeliveryStatus.cancelled
        )
    ).scalar_one()
    connection.execute(
        update(ALERTS)
        .where(ALERTS.c.id == alert_id)
        .values(status=AlertStatus.cancelled, cancelled_at=func.now())
    )
    return int(cancelled), int(out)


# the dispatcher --------------------------------------------------------------------------------


def claim_due(connection: Connection, *, batch: int, lease_s: float) -> list[int]:
    """Claim due deliveries: mark them ``sending`` with a lease, return their ids.

    Due: queued and past ``next_attempt_at``, or ``sending`` with an expired lease (a dispatcher
    died in the middle). ``FOR UPDATE SKIP LOCKED`` lets several dispatchers claim side by side.
    """
    lease = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, literal(float(lease_s)))
    due = (
        select(RECIPIENTS.c.id)
        .join(ALERTS, ALERTS.c.id == RECIPIENTS.c.alert_id)
        .where(
            ALERTS.c.status != AlertStatus.cancelled,
            or_(
                and_(
                    RECIPIENTS.c.status == DeliveryStatus.queued,
                    RECIPIENTS.c.next_attempt_at <= func.now(),
                ),
                and_(
                    RECIPIENTS.c.status == DeliveryStatus.sending,
                    RECIPIENTS.c.leased_until < func.now(),
                ),
            ),
        )
        .order_by(RECIPIENTS.c.next_attempt_at, RECIPIENTS.c.id)
        .limit(batch)
        .with_for_update(of=RECIPIENTS, skip_locked=True)
    )
    ids = [int(r[0]) for r in connection.execute(due)]
    if not ids:
        return []
    connection.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id.in_(ids))
        .values(
            status=DeliveryStatus.sending,
            attempts=RECIPIENTS.c.attempts + 1,
            leased_until=lease,
        )
    )
    alert_ids = select(RECIPIENTS.c.alert_id).where(RECIPIENTS.c.id.in_(ids))
    connection.execute(
        update(ALERTS)
        .where(ALERTS.c.id.in_(alert_ids), ALERTS.c.status == AlertStatus.queued)
        .values(status=AlertStatus.sending)
    )
    return ids


def deliveries(connection: Connection, recipient_ids: Sequence[int]) -> list:
    """What the dispatcher needs to deliver the claimed recipients, destination included."""
    destination = case(
        (RECIPIENTS.c.kind == "coordinator", CONTACTS.c.email),
        (RECIPIENTS.c.channel == "email", MEMBERS.c.email),
        else_=MEMBERS.c.phone,
    )
    query = (
        select(
            RECIPIENTS.c.id,
            RECIPIENTS.c.alert_id,
            RECIPIENTS.c.kind,
            RECIPIENTS.c.channel,
            RECIPIENTS.c.language,
            RECIPIENTS.c.attempts,
            RECIPIENTS.c.idempotency_key,
            destination.label("destination"),
            func.coalesce(NETWORKS.c.name, ALERT_NETWORKS.c.network_code).label("network_name"),
            ALERTS.c.messages,
            ALERTS.c.headline,
        )
        .join(ALERTS, ALERTS.c.id == RECIPIENTS.c.alert_id)
        .outerjoin(MEMBERS, MEMBERS.c.id == RECIPIENTS.c.member_id)
        .outerjoin(CONTACTS, CONTACTS.c.id == RECIPIENTS.c.contact_id)
        .outerjoin(NETWORKS, NETWORKS.c.id == RECIPIENTS.c.network_id)
        .outerjoin(
            ALERT_NETWORKS,
            and_(
                ALERT_NETWORKS.c.alert_id == RECIPIENTS.c.alert_id,
                ALERT_NETWORKS.c.network_id == RECIPIENTS.c.network_id,
            ),
        )
        .where(RECIPIENTS.c.id.in_(list(recipient_ids)))
        .order_by(RECIPIENTS.c.id)
    )
    return connection.execute(query).all()


def mark_sent(connection: Connection, recipient_id: int) -> None:
    """Record a delivery the receiver accepted."""
    connection.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id, RECIPIENTS.c.status == DeliveryStatus.sending)
        .values(status=DeliveryStatus.sent, sent_at=func.now(), leased_until=None, last_error=None)
    )


def mark_retry(connection: Connection, recipient_id: int, error: str, delay_s: float) -> None:
    """Put a delivery back in the queue after a transient failure."""
    later = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, literal(float(delay_s)))
    connection.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id, RECIPIENTS.c.status == DeliveryStatus.sending)
        .values(
            status=DeliveryStatus.queued,
            next_attempt_at=later,
            leased_until=None,
            last_error=error[:500],
        )
    )


def mark_failed(connection: Connection, recipient_id: int, error: str) -> None:
    """Give up on a delivery (permanent failure or attempts exhausted)."""
    connection.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id, RECIPIENTS.c.status == DeliveryStatus.sending)
        .values(status=DeliveryStatus.failed, leased_until=None, last_error=error[:500])
    )


def finish_alerts(connection: Connection, alert_ids: Sequence[int]) -> None:
    """Mark alerts done when none of their recipients is queued or sending any more."""
    if not alert_ids:
        return
    open_ = (
        select(RECIPIENTS.c.id)
        .where(
            RECIPIENTS.c.alert_id == ALERTS.c.id,
            RECIPIENTS.c.status.in_([DeliveryStatus.queued, DeliveryStatus.sending]),
        )
        .exists()
    )
    connection.execute(
        update(ALERTS)
        .where(
            ALERTS.c.id.in_(list(alert_ids)),
            ALERTS.c.status.in_([AlertStatus.queued, AlertStatus.sending]),
            ~open_,
        )
        .values(status=AlertStatus.done)
    )


def pending_count(connection: Connection) -> int:
    """Deliveries still queued or sending (of alerts not cancelled)."""
    return int(
        connection.execute(
            select(func.count())
            .select_from(RECIPIENTS.join(ALERTS, ALERTS.c.id == RECIPIENTS.c.alert_id))
            .where(
                ALERTS.c.status != AlertStatus.cancelled,
                RECIPIENTS.c.status.in_([DeliveryStatus.queued, DeliveryStatus.sending]),
            )
        ).scalar_one()
    )


def now(connection: Connection) -> dt.datetime:
    """The database's clock."""
    return connection.execute(select(func.now())).scalar_one()


# private helpers -------------------------------------------------------------------------------


def _member_query() -> Select:
    return select(
        MEMBERS.c.id,
        MEMBERS.c.network_id,
        MEMBERS.c.address_id,
        MEMBERS.c.language,
        MEMBERS.c.channels,
        MEMBERS.c.outside_area,
    )


def _coordinator_query() -> Select:
    return select(
        CONTACTS.c.id,
        CONTACTS.c.network_id,
        CONTACTS.c.language,
        and_(CONTACTS.c.email.is_not(None), CONTACTS.c.email != ""),
    ).where(CONTACTS.c.role == ContactRole.coordinator)


def _rows(connection: Connection, query: Select, table, network_ids: Sequence[int] | None):
    if network_ids is not None:
        if not network_ids:
            return []
        query = query.where(table.c.network_id == any_(_IDS))
    return connection.execute(query.order_by(table.c.id), {"ids": list(network_ids or ())})


def _member(r) -> MemberRow:
    return MemberRow(int(r[0]), int(r[1]), int(r[2]), r[3], tuple(r[4] or ()), bool(r[5]))


def _contact(r) -> ContactRow:
    return ContactRow(int(r[0]), int(r[1]), r[2] or "nl", bool(r[3]))


def _stamp(row) -> tuple:
    return (tuple(row[0] or ()), tuple(row[1] or ()))


_STAMP = (versions_of(*PLACE_TABLES), versions_of(*PEOPLE_TABLES))
