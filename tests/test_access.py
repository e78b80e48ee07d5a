"""The role and scope rules of ``bingeo.access``, as a table (no database)."""

from __future__ import annotations

import pytest

from bingeo.access import (
    ANONYMOUS,
    Action,
    Principal,
    Target,
    allowed,
    allowed_somewhere,
    authorize,
    authorize_somewhere,
)
from bingeo.db.models import Role
from bingeo.errors import Forbidden, NotAuthenticated

A, B = "5388", "5389"
X, Y = "24011", "24062"

ADMIN = Principal(user_id=1, name="admin", role=Role.admin)
ANALYST_A = Principal(user_id=2, name="analyst", role=Role.police_analyst, police_zone_code=A)
OFFICER_A = Principal(user_id=3, name="officer", role=Role.police_officer, police_zone_code=A)
PLANNER_X = Principal(user_id=4, name="planner", role=Role.municipality_planner, nis_code=X)
COORD_7 = Principal(user_id=5, name="coordinator", role=Role.coordinator, network_id=7)


def net(network_id: int, nis: str | tuple | None, zone: str | tuple | None) -> Target:
    def codes(value: str | tuple | None) -> frozenset[str]:
        return frozenset([value] if isinstance(value, str) else value or [])

    return Target(network_id=network_id, nis_codes=codes(nis), police_zone_codes=codes(zone))


NET_XA = net(7, X, A)
NET_YB = net(8, Y, B)
NET_XB = net(9, X, B)  # a municipality of one zone, a network registered with another zone
NET_NOWHERE = net(10, None, None)
NET_CROSSING = net(11, (X, Y), (A, B))  # a network lying on both sides of a border
WHOLE = Target()

RULES = [
    # anonymous: public facts only
    (ANONYMOUS, Action.read_public, NET_XA, True),
    (ANONYMOUS, Action.read_public, WHOLE, True),
    (ANONYMOUS, Action.read_aggregates, NET_XA, False),
    (ANONYMOUS, Action.read_personal, NET_XA, False),
    (ANONYMOUS, Action.write_network, NET_XA, False),
    (ANONYMOUS, Action.send_alert, NET_XA, False),
    (ANONYMOUS, Action.admin, WHOLE, False),
    # admin: everything
    (ADMIN, Action.read_personal, NET_YB, True),
    (ADMIN, Action.write_network, NET_NOWHERE, True),
    (ADMIN, Action.admin, WHOLE, True),
    (ADMIN, Action.write_network, NET_CROSSING, True),
    # police analyst of zone A
    # Analysts see aggregates only, never member identities (issue 5).
    (ANALYST_A, Action.read_personal, NET_XA, False),
    (ANALYST_A, Action.read_aggregates, NET_XA, True),
    (ANALYST_A, Action.read_personal, NET_YB, False),
    (ANALYST_A, Action.read_aggregates, NET_YB, False),
    # Analysts write no network (issue 14: an analyst deleted members through a network).
    (ANALYST_A, Action.write_network, NET_XA, False),
    (ANALYST_A, Action.write_network, NET_YB, False),
    (ANALYST_A, Action.read_alerts, NET_XA, True),
    (ANALYST_A, Action.read_alerts, NET_YB, False),
    # A network crossing a border is in both sides' views, but only an admin changes it.
    (ANALYST_A, Action.read_aggregates, NET_CROSSING, True),
    (ANALYST_A, Action.read_aggregates, Target(police_zone_codes=frozenset([A, B])), False),
    (ANALYST_A, Action.write_network, NET_XB, False),
    (ANALYST_A, Action.write_network, NET_NOWHERE, False),
    (ANALYST_A, Action.read_personal, WHOLE, False),
    (ANALYST_A, Action.send_alert, NET_XA, False),
    (ANALYST_A, Action.admin, WHOLE, False),
    # police officer of zone A: reads and alerts in A, never writes networks
    (OFFICER_A, Action.read_personal, NET_XA, True),
    (OFFICER_A, Action.read_personal, NET_YB, False),
    (OFFICER_A, Action.send_alert, NET_XA, True),
    (OFFICER_A, Action.send_alert, NET_YB, False),
    (OFFICER_A, Action.write_network, NET_XA, False),
    (OFFICER_A, Action.read_alerts, NET_XA, True),
    (OFFICER_A, Action.send_alert, NET_CROSSING, True),
    (OFFICER_A, Action.read_personal, NET_CROSSING, True),
    (OFFICER_A, Action.admin, WHOLE, False),
    # planner of municipality X: writes networks of X only, never personal data
    (PLANNER_X, Action.write_network, NET_XA, True),
    (PLANNER_X, Action.write_network, NET_XB, True),
    (PLANNER_X, Action.write_network, NET_YB, False),
    (PLANNER_X, Action.write_network, NET_NOWHERE, False),
    (PLANNER_X, Action.write_network, Target(nis_codes=frozenset([X, Y])), False),
    (PLANNER_X, Action.read_aggregates, NET_XA, True),
    (PLANNER_X, Action.read_personal, NET_XA, False),
    (PLANNER_X, Action.read_aggregates, NET_CROSSING, True),
    (PLANNER_X, Action.write_network, NET_CROSSING, False),
    # Police texts are for the network's coordinator and its zone's police (issue 14).
    (PLANNER_X, Action.read_alerts, NET_XA, False),
    (PLANNER_X, Action.send_alert, NET_XA, False),
    (PLANNER_X, Action.admin, WHOLE, False),
    # coordinator of network 7: their own network only, never writes
    (COORD_7, Action.read_personal, NET_XA, True),
    (COORD_7, Action.read_aggregates, NET_XA, True),
    (COORD_7, Action.read_personal, NET_YB, False),
    (COORD_7, Action.read_personal, WHOLE, False),
    (COORD_7, Action.write_network, NET_XA, False),
    (COORD_7, Action.read_alerts, NET_XA, True),
    (COORD_7, Action.read_alerts, NET_YB, False),
    (COORD_7, Action.send_alert, NET_XA, False),
    (COORD_7, Action.admin, WHOLE, False),
]


@pytest.mark.parametrize(("principal", "action", "target", "expected"), RULES)
def test_rule(principal: Principal, action: Action, target: Target, expected: bool) -> None:
    assert allowed(principal, action, target) is expected


def test_scoped_user_without_scope_reaches_nothing() -> None:
    unscoped = Principal(user_id=9, name="odd", role=Role.police_analyst)
    assert not allowed(unscoped, Action.read_personal, NET_XA)
    assert not allowed(unscoped, Action.write_network, NET_NOWHERE)


def test_authorize_raises_401_for_anonymous_and_403_for_users() -> None:
    with pytest.raises(NotAuthenticated):
        authorize(ANONYMOUS, Action.write_network, NET_XA)
    with pytest.raises(Forbidden) as refused:
        authorize(PLANNER_X, Action.write_network, NET_YB)
    assert "municipality:24062" in refused.value.detail
    authorize(PLANNER_X, Action.write_network, NET_XA)


def test_scope_text() -> None:
    assert ANALYST_A.scope_text() == "police_zone:5388"
    assert COORD_7.scope_text() == "network:7"
    assert ANONYMOUS.scope_text() is None
    assert NET_XA.describe() == "network:7,municipality:24011,police_zone:5388"
    assert WHOLE.describe() == "all"


SOMEWHERE = [
    (ANONYMOUS, Action.send_alert, False),
    (ANONYMOUS, Action.read_aggregates, False),
    (ADMIN, Action.send_alert, True),
    (OFFICER_A, Action.send_alert, True),
    (ANALYST_A, Action.send_alert, False),
    (ANALYST_A, Action.read_aggregates, True),
    (PLANNER_X, Action.write_network, True),
    (PLANNER_X, Action.read_aggregates, True),
    (PLANNER_X, Action.send_alert, False),
    (OFFICER_A, Action.write_network, False),
    # a coordinator's scope is a network, never a place
    (COORD_7, Action.read_aggregates, False),
    (COORD_7, Action.write_network, False),
    # a planner without a municipality has no place to act on
    (Principal(user_id=6, name="p", role=Role.municipality_planner), Action.write_network, False),
]


@pytest.mark.parametrize(("principal", "action", "expected"), SOMEWHERE)
def test_allowed_somewhere_before_the_place_is_known(principal, action, expected) -> None:
    """The check made before a geometry is parsed: anonymous 401, a role never allowed 403."""
    assert allowed_somewhere(principal, action) is expected
    if expected:
        authorize_somewhere(principal, action)
    else:
        error = NotAuthenticated if principal.anonymous else Forbidden
        with pytest.raises(error):
            authorize_somewhere(principal, action)
