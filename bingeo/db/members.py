"""Repository of members (personal data: only services that checked access call it)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select

from bingeo.db.models import Address, Member, Network

MEMBERS = Member.__table__
ADDRESSES = Address.__table__
NETWORKS = Network.__table__


def add_member(connection: Connection, values: dict) -> int:
    """Insert a member and return its id."""
    return connection.execute(insert(MEMBERS).values(**values).returning(MEMBERS.c.id)).scalar_one()


def list_members(
    connection: Connection, network_id: int, *, limit: int, offset: int
) -> tuple[list, int]:
    """A page of a network's members with their address, and the total."""
    total = connection.execute(
        select(func.count()).select_from(MEMBERS).where(MEMBERS.c.network_id == network_id)
    ).scalar_one()
    rows = connection.execute(
        select(
            MEMBERS,
            ADDRESSES.c.street,
            ADDRESSES.c.house_number,
            ADDRESSES.c.box,
            ADDRESSES.c.postcode,
            ADDRESSES.c.municipality,
        )
        .join(ADDRESSES, ADDRESSES.c.id == MEMBERS.c.address_id)
        .where(MEMBERS.c.network_id == network_id)
        .order_by(MEMBERS.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), int(total)


def get_member(connection: Connection, member_id: int):
    """One member row or None."""
    return connection.execute(select(MEMBERS).where(MEMBERS.c.id == member_id)).first()


def remove_member(connection: Connection, member_id: int) -> bool:
    """Delete a member; False when there was none."""
    return connection.execute(delete(MEMBERS).where(MEMBERS.c.id == member_id)).rowcount == 1


def address_exists(connection: Connection, address_id: int) -> tuple[bool, bool]:
    """(exists, located) for an address id."""
    row = connection.execute(
        select(ADDRESSES.c.id, ADDRESSES.c.geom.is_not(None)).where(ADDRESSES.c.id == address_id)
    ).first()
    return (row is not None, bool(row[1]) if row else False)


def count_members(connection: Connection, network_ids: list[int]) -> dict[int, int]:
    """Number of members per network (aggregate, no identities)."""
    rows = connection.execute(
        select(MEMBERS.c.network_id, func.count())
        .where(MEMBERS.c.network_id.in_(network_ids))
        .group_by(MEMBERS.c.network_id)
    )
    return {int(n): int(c) for n, c in rows}
