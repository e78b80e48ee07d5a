"""Generated requests against the app's own OpenAPI (schemathesis): never a 5xx.

Every operation, anonymously and with a token of every role. The parsers behind the routes are
fuzzed on their own in tests/test_fuzz_parsers.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from api_helpers import make_world
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
    assert routes - documented == {("GET", "/app"), ("GET", "/app/"), ("GET", "/app/files/{name}")}
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
