"""A route class whose JSON request bodies are parsed in a worker thread, not on the event loop."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


class ThreadedJSONRequest(Request):
    """A request whose ``json()`` parses in a worker thread: a geometry of 20,000 points is a
    body of about 1 MB, and parsing it on the event loop would hold up every other request
    (``/healthz`` included) for tens of milliseconds."""

    async def json(self) -> Any:
        """The body parsed as JSON (once), off the event loop."""
        if not hasattr(self, "_json"):
            self._json = await run_in_threadpool(json.loads, await self.body())
        return self._json


class ThreadedJSONRoute(APIRoute):
    """An ``APIRoute`` that hands its endpoint a ``ThreadedJSONRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given the request with the threaded ``json()``."""
        handler = super().get_route_handler()

        async def threaded(request: Request) -> Response:
            return await handler(ThreadedJSONRequest(request.scope, request.receive))

        return threaded
