"""Planning a network: validation reports, clip and snap, the lifecycle, versions, roles."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from itertools import pairwise

import geopandas as gpd
import pytest
import shapely
from api_helpers import (
    ADMIN,
    CENTRE_X,
    NIS_X,
    assert_error,
    audit_rows,
    load_places,
    square,
)
from geoalchemy2.shape import from_shape
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon
from sqlalchemy import func, insert, select, update

from bingeo.access import Actor, Principal
from bingeo.db.models import (
    SRID,
    Address,
    Alert,
    AlertMode,
    AlertNetwork,
    AlertStatus,
    AlertUrgency,
    AreaLevel,
    ContactRole,
    Member,
    Network,
    NetworkKind,
    NetworkLifecycle,
    NetworkStatus,
    NetworkTransition,
    ReferenceArea,
    Role,
)
from bingeo.errors import Conflict, IllegalTransition, InvalidInput
from bingeo.geometry import geojson_to_storage
from bingeo.members import MemberInput
from bingeo.planning import (
    TRANSITIONS,
    ContactInput,
    RoleSummary,
    Severity,
    check_transition,
    clip,
    snap,
)
from bingeo.services import networks as network_service
from bingeo.services import planning as service
from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.matching import rematch_all
from bingeo.services.members import register_member
from bingeo.services.streetlists import derive_from_street_list, store_derived

CURRENT_BIERBEEK = {
    "BIERBEEK-MARTINUSBERG",
    "BIERBEEK-PIMBERG",
    "BIERBEEK-KRIJKELBERG",
    "BIERBEEK-OPVELP",
}
# A synthetic neighbourhood in Lambert 72: a grid of addresses, 20 m apart.
X0, Y0 = 170_000.0, 170_000.0
GRID = 20
STEP_M = 20.0
S = NetworkStatus


# Helpers ---------------------------------------------------------------------------------------


def _add_grid(engine) -> None:
    rows = []
    for i in range(GRID):
        for j in range(GRID):
            x, y = X0 + i * STEP_M + 0.37, Y0 + j * STEP_M + 0.61
            rows.append(
                {
                    "source_key": f"grid-{i}-{j}",
                    "street": f"Straat {i}",
                    "house_number": str(j + 1),
                    "postcode": "3360",
                    "municipality": "Gridgem",
                    "nis_code": NIS_X,
                    "geom": f"SRID={SRID};POINT({x} {y})",
                }
            )
    with engine.begin() as connection:
        connection.execute(insert(Address), rows)


def _box(x1: float, y1: float, x2: float, y2: float) -> MultiPolygon:
    return MultiPolygon([shapely.box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)])


def _network(engine, geometry, *, name="N", status=S.active, kind=NetworkKind.BIN):
    return network_service.create_network(
        engine, ADMIN, name=name, kind=kind, geometry=geometry, status=status
    )


def _postgis_count(engine, geometry, *also) -> int:
    """Addresses covered by ``geometry`` (and every one of ``also``), counted by PostGIS."""
    table = Address.__table__
    conditions = [func.ST_Covers(from_shape(g, srid=SRID), table.c.geom) for g in (geometry, *also)]
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(table).where(*conditions)
        ).scalar_one()


def _proposal(geometry) -> service.Proposal:
    return service.Proposal(
        geometry=MultiPolygon(getattr(geometry, "geoms", [geometry])), source="t"
    )


# The real Bierbeek lists -----------------------------------------------------------------------


def test_pimberg_2018_against_the_current_bierbeek_bins(db, real_data):
    folder = real_data / "bierbeek_bin"
    for layer, level in [
        ("municipalities", "municipality"),
        ("wijken", "wijk"),
        ("deelgemeenten", "deelgemeente"),
        ("police_zones", "police_zone"),
    ]:
        import_areas(db, folder / "bin_municipalities_context.gpkg", level, layer=layer)
    summary = import_addresses(
        db, folder / "addresses_crab_bin_municipalities.csv", skip_invalid=True
    )
    assert len(summary.rejected) == 5  # placeholder positions in France
    current = derive_from_street_list(
        db,
        folder / "bin_streets_published.csv",
        networks_csv=folder / "bin_networks_published.csv",
        only=CURRENT_BIERBEEK,
    )
    store_derived(db, current)
    with db.connect() as connection:
        stored = dict(connection.execute(select(Network.code, Network.id)).all())
    assert set(stored) == CURRENT_BIERBEEK

    proposal = service.proposal_from_street_list(
        db,
        folder / "bin_streets_published.csv",
        network="BIERBEEK-PIMBERG-2018",
        networks_csv=folder / "bin_networks_published.csv",
    )
    planner = Actor(
        Principal(user_id=1, name="planner", role=Role.municipality_planner, nis_code="24011")
    )
    report = service.validate(db, planner, proposal)
    with db.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Network)).scalar_one() == 4

    overlaps = {o["code"]: o for o in report.overlaps}
    pimberg = overlaps["BIERBEEK-PIMBERG"]
    assert pimberg["overlap_m2"] > 10_000
    # The addresses in both: exactly the stored matches of today's Pimberg inside the proposal.
    derived_2018 = {
        a.network: a
        for a in derive_from_street_list(
            db,
            folder / "bin_streets_published.csv",
            networks_csv=folder / "bin_networks_published.csv",
            only={"BIERBEEK-PIMBERG-2018"},
        ).areas
    }["BIERBEEK-PIMBERG-2018"]
    today = {a.network: a for a in current.areas}["BIERBEEK-PIMBERG"]
    both = set(derived_2018.address_ids.tolist()) & set(today.address_ids.tolist())
    assert both <= set(pimberg["address_ids"])
    assert pimberg["addresses"] == len(pimberg["address_ids"]) > 100
    assert pimberg["addresses"] == _postgis_count(
        db, proposal.geometry, _stored_area(db, stored["BIERBEEK-PIMBERG"])
    )
    labels = " ".join(pimberg["address_labels"])
    assert "Pimberg" in labels and "Bergenlaan" in labels
    # Koning Albertlaan 1-71 was Pimberg's in 2018; the upper part is Martinusberg's today.
    assert "BIERBEEK-MARTINUSBERG" in overlaps
    assert all(
        "Koning Albertlaan" in label
        for label in overlaps["BIERBEEK-MARTINUSBERG"]["address_labels"]
    )

    codes = {(f.severity, f.code) for f in report.findings}
    assert (Severity.warning, "overlap") in codes
    assert (Severity.warning, "addresses_covered") in codes
    assert report.valid, report.blocking  # inside Bierbeek, with addresses
    assert report.addresses_inside == _postgis_count(db, proposal.geometry)
    assert [m["code"] for m in report.municipalities] == ["24011"]
    assert len(report.police_zones) == 1
    assert report.wijken and all(w["code"].startswith("24011") for w in report.wijken)
    assert report.addresses_covered_elsewhere >= pimberg["addresses"]

    # Clipping against today's networks leaves no overlap and no shared address.
    clipped, clipped_report = service.clip_proposal(
        db, planner, proposal, [stored["BIERBEEK-PIMBERG"], stored["BIERBEEK-MARTINUSBERG"]]
    )
    assert clipped.geometry.area < proposal.geometry.area
    for overlap in clipped_report.overlaps:
        if overlap["code"] in ("BIERBEEK-PIMBERG", "BIERBEEK-MARTINUSBERG"):
            assert overlap["overlap_m2"] < 1 and overlap["addresses"] == 0

    # A planner of another municipality is refused (the report is an aggregate of Bierbeek).
    other = Actor(
        Principal(user_id=2, name="other", role=Role.municipality_planner, nis_code="11023")
    )
    with pytest.raises(Exception, match="may not read_aggregates"):
        service.validate(db, other, proposal)


def _stored_area(engine, network_id: int):
    return network_service.get_network(engine, ADMIN, network_id).geometry


# Property tests --------------------------------------------------------------------------------

polygons = st.lists(
    st.tuples(st.integers(-60, GRID * 20 + 60), st.integers(-60, GRID * 20 + 60)),
    min_size=3,
    max_size=8,
).map(lambda points: shapely.MultiPoint([(X0 + x, Y0 + y) for x, y in points]).convex_hull)


@pytest.fixture
def grid_world(db):
    _add_grid(db)
    first = _network(db, _box(0, 0, 150, 150), name="first")
    second = _network(db, _box(200, 100, 330, 390), name="second")
    return db, first.id, second.id


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(shape=polygons)
def test_report_counts_equal_a_postgis_count(grid_world, shape):
    engine, first, second = grid_world
    if shape.geom_type != "Polygon" or shape.area < 1:
        return
    report = service.validate(engine, ADMIN, _proposal(shape))
    assert report.addresses_inside == _postgis_count(engine, shape)
    for overlap in report.overlaps:
        area = _stored_area(engine, overlap["network_id"])
        assert overlap["addresses"] == _postgis_count(engine, shape, area)
        assert overlap["overlap_m2"] == pytest.approx(shape.intersection(area).area, abs=0.1)
    if report.addresses_inside == 0:
        assert any(f.code == "no_address" for f in report.blocking)


@hsettings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(shape=polygons)
def test_clipping_removes_the_overlap_and_never_adds_area(grid_world, shape):
    engine, first, second = grid_world
    if shape.geom_type != "Polygon" or shape.area < 1:
        return
    others = [_stored_area(engine, first), _stored_area(engine, second)]
    try:
        clipped = clip(shape, others)
    except Exception as exc:  # nothing left: only when the shape lies inside the others
        assert shape.difference(shapely.union_all(others)).area < 0.1, exc
        return
    assert clipped.area <= shape.area + 1e-6
    assert clipped.difference(shape).area < 1e-6
    for other in others:
        assert clipped.intersection(other).area < 0.01
    _, report = service.clip_proposal(engine, ADMIN, _proposal(shape), [first, second])
    for overlap in report.overlaps:
        assert overlap["overlap_m2"] < 0.01 and overlap["addresses"] == 0


def test_snap_moves_edges_onto_wijk_boundaries_within_the_tolerance(db):
    _add_grid(db)
    wijken = [("W1", _box(0, 0, 200, 200)), ("W2", _box(200, 0, 400, 200))]
    with db.begin() as connection:
        for code, geom in wijken:
            connection.execute(
                insert(ReferenceArea).values(
                    level=AreaLevel.wijk,
                    code=code,
                    nis_code=NIS_X,
                    geom=from_shape(geom, srid=SRID),
                )
            )
    drawn = _box(4, -6, 207, 193)
    snapped, report = service.snap_proposal(
        db, ADMIN, _proposal(drawn.geoms[0]), level=AreaLevel.wijk, tolerance_m=10
    )
    assert snapped.geometry.symmetric_difference(wijken[0][1]).area < 0.01
    assert report.addresses_inside == _postgis_count(db, wijken[0][1])
    # Beyond the tolerance nothing moves.
    far = shapely.box(X0 + 50, Y0 + 50, X0 + 150, Y0 + 150)
    assert snap(far, [g for _, g in wijken], tolerance_m=10).symmetric_difference(far).area < 1e-6


# Lifecycle -------------------------------------------------------------------------------------

FULL_FACTS = {
    S.preparation: {},
    S.information_evening: {
        "consulted_local_authority_at": "2024-01-10",
        "consulted_police_at": "2024-01-12",
        "motives": "burglaries in the street",
        "expectations": "faster information",
        "goals": "prevention",
        "information_evening_date": "2024-03-01",
    },
    S.charter: {"attendance": 42, "approved": True},
    S.active: {
        "communication_plan": "e-mail via coordinator",
        "financing_plan": "none needed",
        "signed_by_coordinator_at": "2024-04-01",
        "signed_by_police_at": "2024-04-02",
        "signed_by_local_authority_at": "2024-04-03",
        "sent_to_fps_home_affairs_at": "2024-04-04",
    },
}


def _step_facts(current: NetworkStatus, target: NetworkStatus, merge_into: int) -> dict:
    step = TRANSITIONS[current][target]
    given = {}
    if "reason" in step.given:
        given["reason"] = f"{current.value} to {target.value}"
    if "merged_into" in step.given:
        given["merged_into"] = merge_into
    return {**FULL_FACTS.get(target, {}), **given}


def _paths(state=S.idea, seen=()) -> list[list[NetworkStatus]]:
    """Every legal path from ``state`` that visits no state twice, to a final state."""
    seen = (*seen, state)
    nexts = [s for s in TRANSITIONS[state] if s not in seen]
    if not TRANSITIONS[state]:
        return [list(seen)]
    found = []
    for target in nexts:
        found += _paths(target, seen)
    return found


def _ready_roles(engine, network_id: int, kind: NetworkKind) -> None:
    people = [
        ContactInput(
            ContactRole.coordinator,
            "Co Ordinator",
            email="co@example.be",
            adult=True,
            screened=True,
            screened_at=dt.date(2024, 2, 1),
        ),
        ContactInput(ContactRole.police_officer, "Agent", email="agent@police.be"),
    ]
    if kind == NetworkKind.BIN_Z:
        people += [
            ContactInput(ContactRole.local_authority, "Schepen", email="schepen@gemeente.be"),
            ContactInput(
                ContactRole.self_employed,
                "Bakker",
                phone="+32 470 12 34 56",
                organisation="Bakkerij",
            ),
        ]
    for person in people:
        service.add_contact(engine, ADMIN, network_id, person)


def test_every_illegal_transition_is_refused_pure():
    everything = {k: "2024-01-01" for k in ("x",)}
    for current in S:
        for target in S:
            if target in TRANSITIONS[current]:
                continue
            with pytest.raises(IllegalTransition, match="cannot go from"):
                check_transition(current, target, everything, roles=RoleSummary(1, 1, 1, 1, 1))


def test_steps_need_their_facts_and_roles_pure():
    with pytest.raises(IllegalTransition, match="missing .*motives"):
        check_transition(S.preparation, S.information_evening, {})
    with pytest.raises(IllegalTransition, match="did not approve"):
        check_transition(
            S.information_evening,
            S.charter,
            {
                "information_evening_date": "x",
                "invitations_exported_at": "x",
                "attendance": 3,
                "approved": False,
            },
        )
    facts = FULL_FACTS[S.active]
    with pytest.raises(IllegalTransition, match="adult and screened"):
        check_transition(S.charter, S.active, facts, roles=RoleSummary(1, 0, 1, 0, 0))
    with pytest.raises(IllegalTransition, match="self-employed"):
        check_transition(
            S.charter, S.active, facts, kind=NetworkKind.BIN_Z, roles=RoleSummary(1, 1, 1, 1, 0)
        )
    check_transition(S.charter, S.active, facts, roles=RoleSummary(1, 1, 1, 0, 0))
    with pytest.raises(IllegalTransition, match="reason"):
        check_transition(S.active, S.suspended, {"reason": "old reason in the store"})


def test_every_legal_path_is_accepted_and_recorded_and_every_illegal_step_refused(db):
    _add_grid(db)
    keeper = _network(db, _box(300, 300, 390, 390), name="keeper")
    start = [S.idea, S.preparation, S.information_evening, S.charter, S.active]
    # The revivals (dormant or suspended back to active) take a state twice.
    paths = [
        *_paths(),
        [*start, S.dormant, S.active, S.suspended, S.active, S.dormant, S.merged],
        [*start, S.suspended, S.active, S.dormant, S.dissolved],
    ]
    edges = {(a, b) for path in paths for a, b in pairwise(path)}
    assert edges == {(a, b) for a, steps in TRANSITIONS.items() for b in steps}
    for number, path in enumerate(paths):
        kind = NetworkKind.BIN_Z if number % 2 else NetworkKind.BIN
        network = _network(
            db, _box(0, 0, 100, 100), name=f"path {number}", status=S.idea, kind=kind
        )
        _ready_roles(db, network.id, kind)
        for current, target in pairwise(path):
            for wrong in S:
                if wrong in TRANSITIONS[current]:
                    continue
                with pytest.raises(IllegalTransition):
                    service.transition(db, ADMIN, network.id, to=wrong, facts={})
            if target == S.charter:
                service.invitations_csv(db, ADMIN, network.id)
            state = service.transition(
                db, ADMIN, network.id, to=target, facts=_step_facts(current, target, keeper.id)
            )
            assert state["status"] == target.value
        state = service.lifecycle_state(db, ADMIN, network.id)
        assert [(h["from"], h["to"]) for h in state["history"]] == [
            (a.value, b.value) for a, b in pairwise(path)
        ]
        assert all(h["by"] == "setup" and h["at"] for h in state["history"])
        assert state["next"] == []  # merged and dissolved are final
        for wrong in S:
            with pytest.raises(IllegalTransition):
                service.transition(db, ADMIN, network.id, to=wrong, facts={"reason": "again"})


def test_a_refused_step_records_nothing(db):
    _add_grid(db)
    network = _network(db, _box(0, 0, 100, 100), status=S.idea)
    service.transition(db, ADMIN, network.id, to=S.preparation)
    with pytest.raises(IllegalTransition, match="missing"):
        service.transition(db, ADMIN, network.id, to=S.information_evening, facts={"motives": "m"})
    state = service.lifecycle_state(db, ADMIN, network.id)
    assert state["status"] == "preparation"
    assert state["facts"] == {}
    assert len(state["history"]) == 1
    with pytest.raises(InvalidInput, match="unknown fact"):
        service.transition(db, ADMIN, network.id, facts={"colour": "red"})
    with pytest.raises(InvalidInput, match="recorded by bingeo"):
        service.transition(db, ADMIN, network.id, facts={"invitations_exported_at": "2024-01-01"})
    # Facts can be recorded on their own, then the step is taken.
    service.transition(db, ADMIN, network.id, facts=FULL_FACTS[S.information_evening])
    state = service.transition(db, ADMIN, network.id, to=S.information_evening)
    assert state["status"] == "information_evening"
    # The evening cannot be closed before the invitation list was exported.
    with pytest.raises(IllegalTransition, match="invitations_exported_at"):
        service.transition(db, ADMIN, network.id, to=S.charter, facts=FULL_FACTS[S.charter])


def test_invitation_list_holds_every_address_of_the_area_and_is_audited(db):
    _add_grid(db)
    area = _box(0, 0, 95, 95)
    network = _network(db, area, status=S.information_evening)
    text, count = service.invitations_csv(db, ADMIN, network.id)
    lines = text.strip().splitlines()
    assert lines[0] == "street,house_number,box,postcode,municipality"
    assert count == len(lines) - 1 == _postgis_count(db, area) == 25
    assert lines[1] == "Straat 0,1,,3360,Gridgem"
    assert audit_rows(db, object_type="invitations")[0]["details"] == {"addresses": 25}
    assert service.lifecycle_state(db, ADMIN, network.id)["facts"]["invitations_exported_at"]


# Versions, members outside ---------------------------------------------------------------------


def test_every_area_change_keeps_the_previous_one_and_stale_edits_conflict(db):
    _add_grid(db)
    network = _network(db, _box(0, 0, 100, 100))
    editor = Actor(Principal(user_id=7, name="editor", role=Role.admin))
    network_service.update_network(
        db,
        editor,
        network.id,
        version=1,
        changes={"geometry": _box(0, 0, 200, 100)},
        reason="street added",
    )
    with pytest.raises(Conflict):
        network_service.update_network(
            db, editor, network.id, version=1, changes={"geometry": _box(0, 0, 50, 50)}
        )
    network_service.update_network(db, editor, network.id, version=2, changes={"name": "renamed"})
    versions = service.list_versions(db, ADMIN, network.id)
    assert [v["version"] for v in versions] == [3, 1]
    assert versions[0]["current"] and versions[0]["area_m2"] == pytest.approx(20_000)
    assert versions[1]["changed_by"] == "editor" and versions[1]["reason"] == "street added"
    assert versions[1]["area_m2"] == pytest.approx(10_000)


def test_members_outside_after_an_edit_are_flagged_never_deleted(db):
    _add_grid(db)
    network = _network(db, _box(0, 0, 200, 200))
    with db.connect() as connection:
        far, near = (
            connection.execute(
                select(Address.id)
                .where(Address.source_key.in_(["grid-9-9", "grid-1-1"]))
                .order_by(Address.source_key.desc())
            )
            .scalars()
            .all()
        )
    member = MemberInput("Resident", "nl", ("email",), dt.datetime.now(dt.UTC), email="r@x.be")
    register_member(db, ADMIN, network.id, address_id=far, member=member)
    register_member(db, ADMIN, network.id, address_id=near, member=member)
    with db.connect() as connection:
        changed = connection.execute(
            select(NetworkLifecycle.members_changed_at).where(
                NetworkLifecycle.network_id == network.id
            )
        ).scalar_one()
    assert changed is not None  # the trigger dates every member change

    network_service.update_network(
        db, ADMIN, network.id, version=1, changes={"geometry": _box(0, 0, 100, 100)}
    )
    flags = _flags(db, network.id)
    assert flags == {far: True, near: False}
    network_service.update_network(
        db, ADMIN, network.id, version=2, changes={"geometry": _box(0, 0, 200, 200)}
    )
    assert _flags(db, network.id) == {far: False, near: False}


def _flags(engine, network_id: int) -> dict[int, bool]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                select(Member.address_id, Member.outside_area).where(
                    Member.network_id == network_id
                )
            ).all()
        )


# Dormant ---------------------------------------------------------------------------------------


def test_active_networks_without_messages_or_member_changes_are_dormant(db):
    _add_grid(db)
    quiet = _network(db, _box(0, 0, 100, 100), name="quiet")
    busy = _network(db, _box(200, 200, 300, 300), name="busy")
    _network(db, _box(0, 200, 100, 300), name="idea", status=S.idea)
    two_years = dt.datetime.now(dt.UTC) - dt.timedelta(days=730)
    with db.begin() as connection:
        connection.execute(update(Network).values(created_at=two_years))
    with db.connect() as connection:
        address = connection.execute(
            select(Address.id).where(Address.source_key == "grid-12-12")
        ).scalar_one()
    member = MemberInput("Resident", "nl", ("email",), dt.datetime.now(dt.UTC), email="r@x.be")
    register_member(db, ADMIN, busy.id, address_id=address, member=member)
    found = service.dormant_networks(db, ADMIN, months=12)
    assert [n["network_id"] for n in found] == [quiet.id]
    # A message reaching the quiet network wakes it up.
    with db.begin() as connection:
        alert_id = connection.execute(
            insert(Alert)
            .values(
                created_by_name="officer",
                police_zone_codes=[],
                mode=AlertMode.relay,
                urgency=AlertUrgency.expected,
                area=from_shape(_box(0, 0, 100, 100), srid=SRID),
                area_description="test",
                filters={},
                headline={},
                messages={},
                reason="test",
                status=AlertStatus.done,
            )
            .returning(Alert.id)
        ).scalar_one()
        connection.execute(
            insert(AlertNetwork).values(
                alert_id=alert_id, network_id=quiet.id, network_code=quiet.code, share_inside=1.0
            )
        )
    assert service.dormant_networks(db, ADMIN, months=12) == []
    # A year on, the member change and the message are old too.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    found = service.dormant_networks(db, ADMIN, months=12, now=later)
    assert {n["network_id"] for n in found} == {quiet.id, busy.id}


# Roles (personal data) -------------------------------------------------------------------------


def test_contacts_are_checked_and_every_read_is_audited(db):
    _add_grid(db)
    network = _network(db, _box(0, 0, 100, 100))
    with pytest.raises(InvalidInput, match="screened_at"):
        service.add_contact(
            db,
            ADMIN,
            network.id,
            ContactInput(ContactRole.coordinator, "C", email="c@x.be", screened=True),
        )
    contact_id = service.add_contact(
        db,
        ADMIN,
        network.id,
        ContactInput(ContactRole.coordinator, "C", email="c@x.be", adult=True, screened=False),
    )
    service.update_contact(
        db,
        ADMIN,
        network.id,
        contact_id,
        ContactInput(
            ContactRole.coordinator,
            "C",
            email="c@x.be",
            adult=True,
            screened=True,
            screened_at=dt.date(2024, 1, 5),
        ),
    )
    contacts = service.list_contacts(db, ADMIN, network.id)
    assert contacts[0]["screened"] is True and contacts[0]["screened_at"] == dt.date(2024, 1, 5)
    assert audit_rows(db, object_type="contacts", action="read")


# Uploads ---------------------------------------------------------------------------------------


def test_uploaded_files_give_the_same_area(db, tmp_path):
    _add_grid(db)
    lonlat = square((4.76, 50.83), 0.002)
    drawn = service.proposal_from_geojson(lonlat)
    frame = gpd.GeoDataFrame({"name": ["p"]}, geometry=[drawn.geometry], crs=31370)
    frame.to_file(tmp_path / "p.gpkg", driver="GPKG")
    frame.to_crs(4326).to_file(tmp_path / "p.kml", driver="KML")
    frame.to_file(tmp_path / "shape.shp")
    with zipfile.ZipFile(tmp_path / "p.zip", "w") as archive:
        for part in tmp_path.glob("shape.*"):
            archive.write(part, part.name)
    (tmp_path / "p.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": lonlat}],
            }
        )
    )
    for name in ("p.gpkg", "p.kml", "p.zip", "p.geojson"):
        proposal = service.proposal_from_file(tmp_path / name)
        assert proposal.geometry.symmetric_difference(drawn.geometry).area < 1.0, name


# API: the role rules ---------------------------------------------------------------------------


def _municipalities(engine) -> None:
    """Municipalities X (zone A) and Y (zone B) as big squares, and addresses in X."""
    _insert_municipalities(engine)
    rematch_all(engine)


def _insert_municipalities(engine) -> None:
    load_places(engine)
    with engine.begin() as connection:
        centre, _ = geojson_to_storage(square(CENTRE_X, 0.002))
        x, y = centre.centroid.x, centre.centroid.y
        connection.execute(
            insert(Address),
            [
                {
                    "source_key": f"x-{i}",
                    "street": "Dorpstraat",
                    "house_number": str(i),
                    "postcode": "3360",
                    "municipality": "Bierbeek",
                    "nis_code": NIS_X,
                    "geom": f"SRID={SRID};POINT({x + i * 3} {y})",
                }
                for i in range(1, 11)
            ],
        )


def test_api_validate_and_proposals_follow_the_role_rules(client, world, db):
    _municipalities(db)
    area = square(CENTRE_X, 0.002)
    assert_error(client.post("/planning/validate", json=area), 401)
    ok = client.post("/planning/validate", json={"geometry": area}, headers=world.auth("planner_x"))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["valid"] and body["addresses_inside"] == 10
    assert body["overlaps"][0]["network_id"] == world.net_x
    assert any(f["code"] == "overlap" for f in body["findings"])
    assert (
        client.post("/planning/validate", json=area, headers=world.auth("analyst_a")).status_code
        == 200
    )
    for user in ("planner_y", "analyst_b", "coordinator_x"):
        assert_error(client.post("/planning/validate", json=area, headers=world.auth(user)), 403)

    # Drawn mostly outside X by X's planner: blocking.
    lon, lat = CENTRE_X
    wide = square((lon + 0.03, lat), 0.004)
    body = client.post("/planning/validate", json=wide, headers=world.auth("planner_x")).json()
    assert not body["valid"]
    assert "outside_municipality" in {
        f["code"] for f in body["findings"] if f["severity"] == "blocking"
    }

    upload = client.post(
        "/planning/validate",
        files={"file": ("area.geojson", json.dumps(area).encode(), "application/geo+json")},
        headers=world.auth("planner_x"),
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["addresses_inside"] == 10

    created = client.post(
        "/planning/proposals",
        json={"name": "BIN Nieuw", "kind": "BIN", "geometry": area},
        headers=world.auth("planner_x"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["network"]["properties"]["status"] == "idea"
    empty = square((lon + 0.02, lat + 0.02), 0.001)  # inside X, no address
    refused = client.post(
        "/planning/proposals",
        json={"name": "Leeg", "geometry": empty},
        headers=world.auth("planner_x"),
    )
    assert_error(refused, 422)
    assert_error(
        client.post(
            "/planning/proposals",
            json={"name": "B", "geometry": area},
            headers=world.auth("analyst_b"),
        ),
        403,
    )
    clipped = client.post(
        "/planning/clip",
        json={"geometry": area, "against": [world.net_x]},
        headers=world.auth("planner_x"),
    )
    assert clipped.status_code == 422  # the area lies inside network X: nothing left


def test_api_lifecycle_contacts_versions_invitations_dormant_rules(client, world, db):
    _municipalities(db)
    net = world.net_x
    assert (
        client.get(f"/networks/{net}/lifecycle", headers=world.auth("planner_x")).status_code == 200
    )
    assert_error(client.get(f"/networks/{net}/lifecycle", headers=world.auth("planner_y")), 403)
    assert_error(client.get(f"/networks/{net}/lifecycle"), 401)
    step = client.post(
        f"/networks/{net}/lifecycle", json={"to": "preparation"}, headers=world.auth("planner_x")
    )
    assert step.status_code == 200, step.text
    assert step.json()["history"][0]["by"] == "planner_x"
    assert_error(
        client.post(
            f"/networks/{net}/lifecycle", json={"to": "active"}, headers=world.auth("planner_x")
        ),
        409,
        "illegal_transition",
    )
    assert_error(
        client.post(
            f"/networks/{net}/lifecycle",
            json={"to": "information_evening"},
            headers=world.auth("officer_a"),
        ),
        403,
    )

    person = {
        "role": "coordinator",
        "name": "Co",
        "email": "co@x.be",
        "adult": True,
        "screened": True,
        "screened_at": "2024-01-02",
    }
    assert_error(
        client.post(f"/networks/{net}/contacts", json=person, headers=world.auth("planner_x")), 403
    )
    added = client.post(f"/networks/{net}/contacts", json=person, headers=world.auth("officer_a"))
    assert added.status_code == 201, added.text
    assert_error(client.get(f"/networks/{net}/contacts", headers=world.auth("planner_x")), 403)
    assert_error(client.get(f"/networks/{net}/contacts", headers=world.auth("analyst_a")), 403)
    own = client.get(f"/networks/{net}/contacts", headers=world.auth("coordinator_x"))
    assert own.status_code == 200 and own.json()["contacts"][0]["name"] == "Co"
    assert_error(
        client.get(f"/networks/{world.net_y}/contacts", headers=world.auth("coordinator_x")), 403
    )
    reads = audit_rows(db, object_type="contacts", action="read")
    assert [r["user_name"] for r in reads] == ["coordinator_x"]

    csv_response = client.get(f"/networks/{net}/invitations.csv", headers=world.auth("planner_x"))
    assert csv_response.status_code == 200
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert len(csv_response.text.strip().splitlines()) == 11
    assert_error(
        client.get(f"/networks/{net}/invitations.csv", headers=world.auth("planner_y")), 403
    )
    assert_error(client.get(f"/networks/{net}/invitations.csv"), 401)

    versions = client.get(f"/networks/{net}/versions", headers=world.auth("analyst_a"))
    assert versions.status_code == 200 and versions.json()["versions"][0]["current"]
    assert_error(client.get(f"/networks/{net}/versions", headers=world.auth("analyst_b")), 403)

    assert_error(client.get("/planning/dormant"), 401)
    with db.begin() as connection:
        connection.execute(
            update(Network).values(
                status=S.active, created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
            )
        )
    seen_a = client.get("/planning/dormant", headers=world.auth("analyst_a")).json()["networks"]
    assert [n["network_id"] for n in seen_a] == [net]
    seen_admin = client.get("/planning/dormant", headers=world.auth("admin")).json()["networks"]
    assert {n["network_id"] for n in seen_admin} == {world.net_x, world.net_y}
    with db.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(NetworkTransition)).scalar_one()
            == 1
        )
