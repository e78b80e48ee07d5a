"""Members: registered by a verified address inside the network, read only by those entitled."""

from __future__ import annotations

from sqlalchemy import Engine

from bingeo.access import Action, Actor
from bingeo.db import matching as match_repo
from bingeo.db import members as member_repo
from bingeo.errors import InvalidInput, NotFound
from bingeo.members import MemberInput, check_member
from bingeo.services.audit import guard, record
from bingeo.services.networks import get_network


def register_member(
    engine: Engine, actor: Actor, network_id: int, *, address_id: int, member: MemberInput
) -> int:
    """Register a member at an address covered by the network; returns the member id.

    An address outside the network is refused with the names of the networks that do cover it.
    """
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_personal, network.target, "member")
    member = check_member(member)
    with engine.begin() as connection:
        exists, located = member_repo.address_exists(connection, address_id)
        if not exists:
            raise NotFound(f"no address {address_id}")
        if not located:
            raise InvalidInput(f"address {address_id} has no position; it cannot be verified")
        covering = [n for _, n in match_repo.network_ids_of_addresses(connection, [address_id])]
        if network_id not in covering:
            names = [f"{r.name} ({r.id})" for r in match_repo.network_facts(connection, covering)]
            others = ", ".join(names) if names else "no network"
            raise InvalidInput(
                f"address {address_id} lies outside network {network.name} ({network_id}); "
                f"it is covered by {others}"
            )
        member_id = member_repo.add_member(
            connection,
            {
                "network_id": network_id,
                "address_id": address_id,
                "name": member.name,
                "email": member.email,
                "phone": member.phone,
                "language": member.language,
                "channels": list(member.channels),
                "consent_at": member.consent_at,
            },
        )
        record(connection, actor, "create", "member", member_id, target=network.target)
    return member_id


def list_members(
    engine: Engine, actor: Actor, network_id: int, *, limit: int, offset: int = 0
) -> tuple[list[dict], int]:
    """A page of a network's members with contact details; the read is audited."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.read_personal, network.target, "members", network_id)
    with engine.begin() as connection:
        rows, total = member_repo.list_members(connection, network_id, limit=limit, offset=offset)
        record(
            connection,
            actor,
            "read",
            "members",
            network_id,
            target=network.target,
            details={"returned": len(rows), "offset": offset},
        )
    return [dict(row._mapping) for row in rows], total


def remove_member(engine: Engine, actor: Actor, network_id: int, member_id: int) -> None:
    """Remove a member of a network."""
    network = get_network(engine, actor, network_id)
    guard(engine, actor, Action.write_personal, network.target, "member", member_id)
    with engine.begin() as connection:
        row = member_repo.get_member(connection, member_id)
        if row is None or row.network_id != network_id:
            raise NotFound(f"no member {member_id} in network {network_id}")
        member_repo.remove_member(connection, member_id)
        record(connection, actor, "delete", "member", member_id, target=network.target)


def member_counts(engine: Engine, network_ids: list[int]) -> dict[int, int]:
    """Members per network: an aggregate without identities."""
    with engine.connect() as connection:
        return member_repo.count_members(connection, network_ids)
