"""One error shape for every response: ``{"detail": "...", "code": "..."}``."""

from __future__ import annotations

import logging
import re
import sys
import tempfile
import traceback
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bingeo import errors
from bingeo.access import Actor
from bingeo.services.audit import refused_anonymously

log = logging.getLogger("bingeo.api")

# The one table from domain errors to HTTP status; subclasses match their nearest listed base.
STATUS_BY_ERROR: dict[type[errors.BinGeoError], int] = {
    errors.PayloadTooLarge: 413,
    errors.InvalidGeometry: 422,
    errors.UnknownCRS: 422,
    errors.InvalidInput: 422,
    errors.NotFound: 404,
    errors.IllegalTransition: 409,
    errors.Conflict: 409,
    errors.PreconditionRequired: 428,
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.TooManyAttempts: 429,
    errors.DatabaseUnavailable: 503,
    errors.BinGeoError: 400,
}
HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    428: "precondition_required",
    429: "too_many_requests",
}


def without_server_paths(detail: str, folders: list[str]) -> str:
    """``detail`` with every path under one of the server's ``folders`` cut to its last part:
    a user may read the name of a file, not where the server keeps it."""
    for folder in sorted({f.rstrip("/") for f in folders if len(f) > 1}, key=len, reverse=True):
        detail = re.sub(
            r"(?<![\w.-])" + re.escape(folder) + r"(?:/[^\s'\"(),;]*)?(?![\w.-])",
            lambda match: Path(match.group(0)).name or "…",
            detail,
        )
    return detail


async def _audit_refusal(request: Request, code: str) -> None:
    """Audit a 401 (no token, or a bad one) the bounded way: counted per client, kind (the
    route, never its values) and minute, one audit entry per minute."""
    route = getattr(request.scope.get("route"), "path", "?")
    actor = Actor(
        request_id=getattr(request.state, "request_id", None),
        client=request.client.host if request.client else None,
    )
    try:
        await run_in_threadpool(
            refused_anonymously,
            request.app.state.engine,
            actor,
            f"401 {code} {request.method} {route}",
        )
    except Exception as exc:  # the answer stays the 401, whatever happens to its audit entry
        log.warning("refusal not audited: %s", type(exc).__name__)


def status_of(error: errors.BinGeoError) -> int:
    """The HTTP status of a domain error."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def error_response(
    status: int, detail: str, code: str, headers: dict | None = None
) -> JSONResponse:
    """The one error body."""
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""
    # Where the server keeps files: temporary files, its data, its code and environment.
    folders = [
        tempfile.gettempdir(),
        str(Path(app.state.settings.data_dir).absolute()),
        str(Path(errors.__file__).resolve().parents[1]),
        sys.prefix,
        str(Path.home()),
    ]

    @app.exception_handler(errors.BinGeoError)
    async def domain_error(request: Request, exc: errors.BinGeoError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, errors.TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after_s)}
        if status >= 500:
            log.error("%s %s -> %s %s", request.method, request.url.path, status, exc.code)
        if isinstance(exc, errors.NotAuthenticated) and not exc.audited:
            await _audit_refusal(request, exc.code)
        return error_response(status, without_server_paths(exc.detail, folders), exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else item["msg"])
        return error_response(422, "; ".join(problems) or "invalid request", "validation_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), code, exc.headers)

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("%s %s -> 503 database unavailable", request.method, request.url.path)
        return error_response(503, "the database is unavailable; try again", "database_unavailable")

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value taken from the request (a number out of range, text that
        # is not a date): the request is at fault, not the server. Logged without the value.
        name = type(exc.orig).__name__
        log.warning("%s %s -> 422 %s", request.method, request.url.path, name)
        return error_response(
            422, "a value of the request is out of range or malformed", "invalid_input"
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Logged once, with the type only: messages may quote request data.
        name = type(exc.orig if isinstance(exc, DBAPIError) else exc).__name__
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("%s %s -> 500 %s\n%s", request.method, request.url.path, name, frames)
        return error_response(500, "internal error", "internal_error")
