"""Generated requests against the app's own OpenAPI (schemathesis): never a 5xx.

Every operation, anonymously and with a token of every role. The parsers behind the routes are
fuzzed on their own in tests/test_fuzz_parsers.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import schemathesis
from api_helpers import CENTRE_X, assert_error, make_world, square
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans

from api.app import create_app
from bingeo.settings import Settings

FUZZ = settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api_schema(db, settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    """The app's own OpenAPI; the app's lifespan (its engine) ends with the test."""
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    shutdown_lifespans()


# Anonymous and every role with valid inputs; admin with invalid ones too.
USERS = [
    (None, False),
    ("admin", True),
    ("analyst_a", False),
    ("officer_a", False),
    ("planner_x", False),
    ("coordinator_x", False),
]


def test_schema_covers_every_route(settings: Settings) -> None:
    """The generated requests reach the whole API: every route of the app is in its OpenAPI
    (the web pages included), so none escapes the generated requests."""
    app = create_app(settings)
    # The routers as the app includes them (without a prefix of their own at inclusion).
    routers = [getattr(r, "original_router", None) for r in app.routes]
    routes = {
        (method, route.path)
        for router in routers
        if router is not None
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    documented = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    # Only the web app's pages stay out of the OpenAPI; they are tried below.
    assert routes - documented == {
        ("GET", "/app"),
        ("GET", "/app/"),
        ("GET", "/app/files/{name}"),
        ("GET", "/docs"),
    }
    assert documented <= routes
    prefixes = {path.split("/")[1] for _, path in documented}
    assert {"networks", "coverage", "planning", "alerts", "auth", "collections"} <= prefixes
    assert any(path.endswith("/members") for _, path in documented)


@pytest.mark.parametrize(("user", "negative"), USERS)
def test_generated_requests_never_get_a_server_error(
    api_schema: schemathesis.BaseSchema, db, subtests, user: str | None, negative: bool
) -> None:
    # Every operation of the OpenAPI; the networks and users of the world exist, so that
    # generated ids and writes hit something, in and out of each role's scope.
    world = make_world(db)
    headers = world.auth(user) if user else {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 40
    for operation in operations:
        takes_input = (
            any(
                len(part)
                for part in (operation.path_parameters, operation.query, operation.headers)
            )
            or operation.body
        )
        modes = [GenerationMode.POSITIVE]
        if negative and takes_input:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            with subtests.test(operation=operation.label, mode=mode.value):

                @FUZZ
                @given(case=operation.as_strategy(mode))
                def call(case: schemathesis.Case) -> None:
                    case.call_and_validate(headers=headers, checks=[not_a_server_error])

                call()


HOSTILE_NAMES = [
    "..%2F..%2Fpyproject.toml",
    "%2e%2e%2fsettings.py",
    "..",
    ".",
    "%00",
    "app.js%00.png",
    "x" * 5000,
    "%C0%AE%C0%AE%2F",
    "index.html%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "\u00e9.css",
]


def test_web_pages_outside_the_openapi_never_fail_or_leak(client) -> None:
    """The web app's own routes with hostile file names: 404 or a file of the app, no 5xx."""
    assert client.get("/app").status_code == 200
    for name in HOSTILE_NAMES:
        response = client.get(f"/app/files/{name}")
        assert response.status_code in (200, 404, 422), (name, response.status_code)
        assert "root:" not in response.text and "[project]" not in response.text


# Families of hostile input that once gave a 500 ---------------------------------------------------
#
# Unicode digits ("²".isdigit() is true, int("²") fails), integers beyond every column and beyond
# Python's 4,300-digit conversion limit, out-of-range ids, and JSON nested deeper than the parser
# recurses: each one in every path, query and header parameter of the OpenAPI, and in every JSON
# body, anonymously and as admin (who gets furthest into the code).

UNICODE_DIGITS = ["²", "٣", "①", "1²", "١٢٣٤٥"]
HUGE_INTEGERS = [str(2**70), str(-(2**70)), "9" * 5000]
OUT_OF_RANGE = ["0", "-1", str(2**31), str(2**63)]
HOSTILE_VALUES = UNICODE_DIGITS + HUGE_INTEGERS + OUT_OF_RANGE
DEEP_BODIES = {
    "deep arrays": "[" * 100_000 + "]" * 100_000,
    "deep objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "deep geometry": '{"type": "Polygon", "coordinates": ' + "[" * 5_000 + "]" * 5_000 + "}",
}
HUGE_BODIES = {
    "huge integer": "9" * 5000,
    "huge coordinate": '{"type": "Polygon", "coordinates": [[[' + "4" * 5000 + ", 50]]]}",
    "huge id": '{"target": {"address_id": ' + "7" * 5000 + ', "radius_m": 100}}',
}
# Routers whose operations with a body need a known caller before the body is read.
CALLER_FIRST = ("/alerts", "/planning", "/networks")
# The validation route reads its body itself (GeoJSON or a multipart upload): not in the OpenAPI.
RAW_JSON_OPERATIONS = [("POST", "/planning/validate")]


def operations(settings: Settings) -> list[tuple[str, str, dict]]:
    """(method, path, operation) of every documented operation."""
    paths = create_app(settings).openapi()["paths"]
    return [(m.upper(), path, op) for path, item in paths.items() for m, op in item.items()]


def example_bodies(world) -> dict[tuple[str, str], object]:
    """A valid body for every operation with a JSON body (a new one needs an example here)."""
    area = square(CENTRE_X, 0.002)
    messages = {"nl": "Let op", "fr": "Attention"}
    contact = {"role": "coordinator", "name": "An Peeters", "email": "an@example.be"}
    return {
        ("POST", "/networks"): {"name": "N", "kind": "BIN", "nis_code": "24011", "geometry": area},
        ("PATCH", "/networks/{network_id}"): {"version": 1, "name": "N", "geometry": area},
        ("POST", "/networks/{network_id}/members"): {
            "address_id": 1,
            "name": "Jan",
            "channels": ["email"],
            "consent_at": "2026-01-01T00:00:00Z",
        },
        ("POST", "/planning/validate"): {"geometry": area},
        ("POST", "/planning/clip"): {
            "geometry": area,
            "against": [world.net_y],
            "network_id": world.net_x,
        },
        ("POST", "/planning/snap"): {"geometry": area, "tolerance_m": 10, "network_id": 1},
        ("POST", "/planning/proposals"): {"name": "Voorstel", "geometry": area},
        ("POST", "/networks/{network_id}/lifecycle"): {"facts": {"meetings": 1}},
        ("POST", "/networks/{network_id}/contacts"): contact,
        ("PUT", "/networks/{network_id}/contacts/{contact_id}"): contact,
        ("POST", "/alerts/preview"): {
            "target": {"address_id": 1, "radius_m": 100},
            "messages": messages,
            "include_address_ids": [1],
            "exclude_address_ids": [2],
        },
        ("POST", "/alerts"): {
            "target": {"circle": {"lon": CENTRE_X[0], "lat": CENTRE_X[1], "radius_m": 100}},
            "messages": messages,
            "reason": "test",
            "include_address_ids": [1],
        },
        ("POST", "/auth/login"): {"name": "admin", "password": "wrong"},
    }


def variants(value: object) -> Iterator[object]:
    """``value`` with one integer made hostile (or one string made of unicode digits)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield from (2**70, -(2**70), 2**63, 2**31, 0)
    elif isinstance(value, str):
        yield from ("²", "١٢٣٤٥")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            for hostile in variants(item):
                yield [*value[:i], hostile, *value[i + 1 :]]
    elif isinstance(value, dict):
        for key, item in value.items():
            for hostile in variants(item):
                yield value | {key: hostile}


def assert_client_error(response, what: object) -> None:
    """A 4xx in the one error shape (or a success): never a server error."""
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert set(response.json()) == {"detail", "code"}, (what, response.text[:300])


def fill(path: str, world, **values: str) -> str:
    """``path`` with its parameters filled in: ``values``, else ids that exist."""
    known = {"network_id": world.net_x, "collectionId": "networks", "featureId": world.net_x}
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m[1], known.get(m[1], 1))), path)


def test_hostile_parameters_never_get_a_server_error(
    client, db, settings: Settings, subtests
) -> None:
    world = make_world(db)
    for method, path, operation in operations(settings):
        for parameter in operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            for headers in ({}, world.auth("admin")):
                with subtests.test(operation=f"{method} {path}", parameter=name, user=headers):
                    for value in HOSTILE_VALUES:
                        if where == "path":
                            url, query, extra = fill(path, world, **{name: value}), {}, {}
                        elif where == "query":
                            url, query, extra = fill(path, world), {name: value}, {}
                        else:
                            # raw bytes: a client may send any octets in a header
                            url, query, extra = fill(path, world), {}, {name: value.encode()}
                        response = client.request(
                            method, url, params=query, headers=headers | extra
                        )
                        assert_client_error(response, (name, value[:20]))


def test_hostile_json_bodies_never_get_a_server_error(
    client, db, settings: Settings, subtests
) -> None:
    world = make_world(db)
    bodies = example_bodies(world)
    with_body = [
        (method, path)
        for method, path, operation in operations(settings)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert set(with_body) | set(RAW_JSON_OPERATIONS) == set(bodies)
    for method, path in bodies:
        url = fill(path, world)
        for headers in ({}, world.auth("admin")):
            with subtests.test(operation=f"{method} {path}", user=headers):
                for name, text in (DEEP_BODIES | HUGE_BODIES).items():
                    response = client.request(
                        method,
                        url,
                        content=text,
                        headers=headers | {"Content-Type": "application/json"},
                    )
                    assert_client_error(response, name)
                    # 401 for an anonymous caller before the body is read, else refused as JSON
                    expected = {401} if not headers and path.startswith(CALLER_FIRST) else {422}
                    assert response.status_code in expected, (name, response.text)
                for body in variants(bodies[(method, path)]):
                    response = client.request(method, url, json=body, headers=headers)
                    assert_client_error(response, body)


def test_validate_refuses_unparsable_json_as_invalid_input(client, db, subtests) -> None:
    """The validation route parses its own body: too deep or too long numbers are a 422."""
    world = make_world(db)
    for name, text in (DEEP_BODIES | HUGE_BODIES).items():
        with subtests.test(body=name):
            response = client.post(
                "/planning/validate",
                content=text,
                headers=world.auth("planner_x") | {"Content-Type": "application/json"},
            )
            error = assert_error(response, 422)
            assert error["code"] in ("invalid_input", "invalid_geometry"), error
            if name.startswith("deep") and name != "deep geometry":
                assert "nested too deeply" in error["detail"], error
