"""Members: registration at a verified address, and who may read them (audited)."""

from __future__ import annotations

import datetime as dt

import pytest
from api_helpers import load_places
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from bingeo.access import Actor, Principal
from bingeo.db.models import AuditEntry, Member, NetworkKind, NetworkStatus, Role
from bingeo.errors import Forbidden, InvalidInput
from bingeo.geometry import geojson_to_storage
from bingeo.members import MemberInput, check_member
from bingeo.services.imports import import_addresses
from bingeo.services.members import list_members, register_member
from bingeo.services.networks import create_network
from bingeo.services.users import add_user, create_token

ADMIN = Actor(Principal(user_id=1, name="admin", role=Role.admin))
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

# Four addresses in Gent, two west and two east of longitude 3.725.
ADDRESSES_CSV = """street,housenumber,postcode,municipality,nis_code,lat,lon
Kouter,1,9000,Gent,44021,51.0500,3.7200
Kouter,3,9000,Gent,44021,51.0502,3.7205
Veldstraat,10,9000,Gent,44021,51.0500,3.7300
Veldstraat,12,9000,Gent,44021,51.0502,3.7305
"""


def _box(west: float, east: float) -> dict:
    ring = [[west, 51.049], [east, 51.049], [east, 51.052], [west, 51.052], [west, 51.049]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture
def gent(db, tmp_path):
    path = tmp_path / "addresses.csv"
    path.write_text(ADDRESSES_CSV)
    import_addresses(db, path)
    # Two made-up municipalities meeting at longitude 3.725, in two police zones.
    load_places(
        db,
        {
            "44021": ("zoneA", (3.70, 51.04, 3.725, 51.06)),
            "44099": ("zoneB", (3.725, 51.04, 3.75, 51.06)),
        },
    )
    networks = {}
    for name, box in (("West", (3.715, 3.725)), ("East", (3.725, 3.735))):
        geometry, _ = geojson_to_storage(_box(*box))
        networks[name] = create_network(
            db,
            ADMIN,
            name=f"BIN {name}",
            kind=NetworkKind.BIN,
            status=NetworkStatus.active,
            geometry=geometry,
        ).id
    with db.connect() as connection:
        from bingeo.db.models import Address

        ids = dict(
            connection.execute(
                select(Address.street + " " + Address.house_number, Address.id)
            ).all()
        )
    return db, networks, ids


def _member(**changes) -> MemberInput:
    values = {
        "name": "Jan Peeters",
        "language": "nl",
        "channels": ("email", "sms"),
        "consent_at": NOW,
        "email": "jan@example.be",
        "phone": "+32 470 12 34 56",
    }
    values.update(changes)
    return MemberInput(**values)


def test_check_member_lists_every_problem():
    with pytest.raises(InvalidInput) as error:
        check_member(
            _member(language="en", channels=("pigeon", "sms"), phone=None, email="nope"), now=NOW
        )
    message = error.value.detail
    for part in ("language", "pigeon", "e-mail address", "phone number"):
        assert part in message


def test_member_inside_network_is_registered_and_read_is_audited(gent):
    db, networks, ids = gent
    member_id = register_member(
        db, ADMIN, networks["West"], address_id=ids["Kouter 1"], member=_member()
    )
    members, total = list_members(db, ADMIN, networks["West"], limit=10)
    assert total == 1 and members[0]["id"] == member_id
    assert members[0]["street"] == "Kouter" and members[0]["channels"] == ["email", "sms"]
    with db.connect() as connection:
        actions = connection.execute(
            select(AuditEntry.action, AuditEntry.object_type).order_by(AuditEntry.id)
        ).all()
    assert ("create", "member") in actions and ("read", "members") in actions


def test_address_outside_names_the_covering_network(gent):
    db, networks, ids = gent
    with pytest.raises(InvalidInput, match="BIN East"):
        register_member(
            db, ADMIN, networks["West"], address_id=ids["Veldstraat 10"], member=_member()
        )
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Member)).scalar_one() == 0


def test_only_coordinator_and_zone_police_read_members(gent):
    db, networks, ids = gent
    register_member(db, ADMIN, networks["West"], address_id=ids["Kouter 3"], member=_member())
    west = networks["West"]
    allowed = [
        Principal(user_id=2, name="coord", role=Role.coordinator, network_id=west),
        Principal(user_id=3, name="officerA", role=Role.police_officer, police_zone_code="zoneA"),
    ]
    refused = [
        Principal(user_id=4, name="coordE", role=Role.coordinator, network_id=networks["East"]),
        Principal(user_id=5, name="officerB", role=Role.police_officer, police_zone_code="zoneB"),
        Principal(user_id=6, name="analystA", role=Role.police_analyst, police_zone_code="zoneA"),
        Principal(user_id=7, name="planner", role=Role.municipality_planner, nis_code="44021"),
    ]
    for principal in allowed:
        assert list_members(db, Actor(principal), west, limit=10)[1] == 1
    for principal in refused:
        with pytest.raises(Forbidden):
            list_members(db, Actor(principal), west, limit=10)
    with db.connect() as connection:
        refusals = (
            connection.execute(select(AuditEntry.user_name).where(AuditEntry.outcome == "refused"))
            .scalars()
            .all()
        )
    assert sorted(refusals) == sorted(p.name for p in refused)


def test_members_over_http(gent, settings):
    db, networks, ids = gent
    west = networks["West"]
    add_user(db, "coordW", Role.coordinator, network_id=west)
    add_user(db, "officerB", Role.police_officer, police_zone_code="zoneB")
    _, coordinator = create_token(db, "coordW")
    _, other = create_token(db, "officerB")
    body = {
        "address_id": ids["Kouter 1"],
        "name": "An Janssens",
        "email": "an@example.be",
        "language": "fr",
        "channels": ["email"],
        "consent_at": "2026-10-01T10:00:00Z",
    }
    with TestClient(create_app(settings)) as client:
        assert client.post(f"/networks/{west}/members", json=body).status_code == 401
        created = client.post(
            f"/networks/{west}/members",
            json=body,
            headers={"Authorization": f"Bearer {coordinator}"},
        )
        assert created.status_code == 201, created.text
        page = client.get(
            f"/networks/{west}/members", headers={"Authorization": f"Bearer {coordinator}"}
        ).json()
        assert page["total"] == 1 and page["members"][0]["language"] == "fr"
        refused = client.get(
            f"/networks/{west}/members", headers={"Authorization": f"Bearer {other}"}
        )
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        public = client.get(f"/networks/{west}").json()
        assert "An Janssens" not in str(public) and "an@example.be" not in str(public)
