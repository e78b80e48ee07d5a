"""A route class for operations that take large bodies (geometries, GIS files): the caller is
known before the body is read, and a JSON body is parsed in a worker thread."""

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
        """The body parsed as JSON (once), off the event loop."""
        if not hasattr(self, "_json"):
            self._json = await run_in_threadpool(json.loads, await self.body())
        return self._json


class CallerFirstRoute(APIRoute):
    """An ``APIRoute`` that refuses an anonymous request with a body before reading it (every
    such operation of the routers using this class needs a known caller; the role and scope are
    checked by the operation) and hands its endpoint a ``ThreadedJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, behind the caller check and with the threaded ``json()``."""
        handler = super().get_route_handler()

        async def caller_first(request: Request) -> Response:
            if request.method in WITH_BODY:
                actor = await get_actor(request, request.app.state.engine, await bearer(request))
                require_caller(actor.principal)
            return await handler(ThreadedJSONRequest(request.scope, request.receive))

        return caller_first
