"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import bingeo
from api import errors
from api.middleware import RequestContext
from api.routes import (
    addresses,
    alerts,
    audit,
    auth,
    coverage,
    features,
    health,
    matches,
    members,
    networks,
    planning,
    web,
)
from bingeo import __version__
from bingeo.db.engine import make_engine
from bingeo.services.principal_cache import PrincipalCache
from bingeo.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """The bingeo API for ``settings``; the engine lives in the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # As many kept connections as requests usually run at once (the thread pool runs up to
        # 40): a connection beyond pool_size is closed when it comes back, and the next request
        # pays for a new server process, with its caches and prepared statements cold.
        engine = make_engine(settings, pool_size=20, max_overflow=20, pool_timeout=5)
        app.state.engine = engine
        # Token principals answered without the database while a listener follows every
        # change to users and tokens.
        principals = PrincipalCache.listening_to(engine)
        app.state.principals = principals
        try:
            yield
        finally:
            principals.close()
            engine.dispose()

    app = FastAPI(
        title="bingeo",
        version=__version__,
        description="BIN / BIN-Z networks on the map: coverage, planning and alerts.",
        lifespan=lifespan,
        # FastAPI's pages load Swagger UI and ReDoc from CDNs: bingeo serves its own /docs.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    for router in (
        health.router,
        networks.router,
        members.router,
        planning.router,
        audit.router,
        features.router,
        addresses.router,
        coverage.router,
        matches.router,
        alerts.router,
        auth.router,
        web.router,
    ):
        app.include_router(router)
    static = Path(bingeo.__file__).parent / "static"
    # check_dir=False: the vendored assets come with `make setup`, the API runs without them.
    app.mount("/static", StaticFiles(directory=static, check_dir=False), name="static")
    app.add_middleware(
        RequestContext,
        max_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
        body_timeout_s=settings.body_timeout_s,
    )
    return app


def app_from_environment() -> FastAPI:
    """The app for the settings of the environment: what each process of
    ``bingeo serve --workers N`` builds (uvicorn starts workers from an import string)."""
    from api.server import HeaderTimeoutProtocol

    settings = Settings()
    HeaderTimeoutProtocol.configured(settings)  # this worker's connections
    return create_app(settings)
