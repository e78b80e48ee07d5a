"""Route classes: JSON bodies parsed in a worker thread, and for operations that take large
bodies (geometries, GIS files) the caller known before the body is read."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.deps import bearer, get_actor
from bingeo.access import require_caller

# Methods whose requests carry a body.
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class ThreadedJSONRequest(Request):
    """A request whose ``json()`` parses in a worker thread: a geometry of 20,000 points is a
    body of about 1 MB, and parsing it on the event loop would hold up every other request
    (``/healthz`` included) for tens of milliseconds."""

    async def json(self) -> Any:
        """The body parsed as JSON (once), off the event loop; nesting too deep for the parser
        or an integer of thousands of digits is a ``JSONDecodeError`` like any other bad JSON
        (a 422), not a ``RecursionError`` or ``ValueError`` (FastAPI answers those 400)."""
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = await run_in_threadpool(json.loads, body)
            except json.JSONDecodeError:
                raise
            except (RecursionError, ValueError) as exc:
                problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                raise json.JSONDecodeError(problem, "", 0) from exc
        return self._json


class ThreadedJSONRoute(APIRoute):
    """An ``APIRoute`` that hands its endpoint a ``ThreadedJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given the request with the threaded ``json()``."""
        handler = super().get_route_handler()

        async def threaded(request: Request) -> Response:
            await self.before_body(request)
            return await handler(ThreadedJSONRequest(request.scope, request.receive))

        return threaded

    async def before_body(self, request: Request) -> None:
        """Checks made before the body is read (none here)."""


class CallerFirstRoute(ThreadedJSONRoute):
    """A ``ThreadedJSONRoute`` that refuses an anonymous request with a body before reading it:
    every such operation of the routers using this class needs a known caller (the role and
    scope are checked by the operation)."""

    async def before_body(self, request: Request) -> None:
        """``NotAuthenticated`` for an anonymous request with a body."""
        if request.method in WITH_BODY:
            actor = await get_actor(request, request.app.state.engine, await bearer(request))
            require_caller(actor.principal)
