"""The web app: its pages and scripts (``api/web``), its configuration, and the network inbox.

Everything the pages load comes from bingeo itself: the app's files from here, Leaflet and
leaflet-draw from the vendored ``/static/vendor`` (``make setup``). Base-map tiles are the one
outside source, and only when ``settings.tiles`` names them.
"""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from api.deps import ActorDep, EngineDep, PagingDep, SettingsDep
from api.schemas import ERRORS
from bingeo.errors import NotFound
from bingeo.services.inbox import received_alerts
from bingeo.settings import Settings

router = APIRouter(tags=["web"], responses=ERRORS)
WEB = Path(__file__).resolve().parents[1] / "web"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SCRIPT_TAG = re.compile(r"<script\b", re.IGNORECASE)
DOCS_URL = "/docs"
# Named tile sets (folium's names, which settings.tiles may hold for the maps of issue 5).
NAMED_TILES = {
    "openstreetmap": (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
    ),
}


@router.get("/app", include_in_schema=False)
def app_page(settings: SettingsDep) -> FileResponse:
    """The web app (one page; login, then the views of the user's role)."""
    return _file("index.html", settings)


@router.get("/app/", include_in_schema=False)
def app_slash() -> RedirectResponse:
    """``/app/`` is ``/app``."""
    return RedirectResponse("/app")


@router.get(DOCS_URL, include_in_schema=False)
def docs_page(settings: SettingsDep) -> HTMLResponse:
    """The API documentation: Swagger UI from the vendored copy (``make setup``), no CDN."""
    assets = settings.assets_url.rstrip("/")
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="bingeo API",
        swagger_js_url=f"{assets}/swagger-ui-dist/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui-dist/swagger-ui.css",
        swagger_favicon_url="/app/files/favicon.svg",
    ).body.decode()
    # Swagger UI starts from an inline script; the page holds no user text.
    nonce = base64.b64encode(secrets.token_bytes(18)).decode()
    page = SCRIPT_TAG.sub(f'<script nonce="{nonce}"', page)
    return HTMLResponse(page, headers=page_headers(settings, script_nonce=nonce))


@router.get("/app/config.json")
def app_config(settings: SettingsDep) -> dict[str, Any]:
    """What the pages need to know: base-map tiles (or none) and where the vendored assets are."""
    return {"tiles": tiles_of(settings), "assets_url": settings.assets_url}


@router.get("/app/files/{name}", include_in_schema=False)
def app_file(name: str, settings: SettingsDep) -> FileResponse:
    """A script, stylesheet or image of the web app."""
    return _file(name, settings)


@router.get("/networks/{network_id}/alerts", tags=["alerts"])
def network_alerts(
    network_id: int, engine: EngineDep, actor: ActorDep, paging: PagingDep
) -> dict[str, Any]:
    """The alerts that reached a network, newest first (its coordinator and zone police)."""
    alerts, total = received_alerts(
        engine, actor, network_id, limit=paging.limit, offset=paging.offset
    )
    return {"network_id": network_id, "total": total, "alerts": alerts}


def tiles_of(settings: Settings) -> dict[str, str] | None:
    """The base-map tiles as ``{url, attribution}``: a URL template ``.../{z}/{x}/{y}...`` or a
    known name; None (a plain background) when unset or unknown."""
    value = (settings.tiles or "").strip()
    if not value:
        return None
    if "{z}" in value and "{x}" in value and "{y}" in value:
        return {"url": value, "attribution": ""}
    named = NAMED_TILES.get(value.lower())
    return {"url": named[0], "attribution": named[1]} if named else None


def _file(name: str, settings: Settings) -> FileResponse:
    # Only plain names of files in api/web: no folders, no dot files, no way out.
    path = WEB / name
    suffix = path.suffix.lower()
    if "/" in name or name.startswith(".") or suffix not in MEDIA_TYPES or not path.is_file():
        raise NotFound(f"no file {name!r} in the web app")
    headers = {"Cache-Control": "no-cache"}
    if suffix == ".html":
        headers |= page_headers(settings)
    return FileResponse(path, media_type=MEDIA_TYPES[suffix], headers=headers)


def map_page(page: str, settings: Settings) -> HTMLResponse:
    """A folium map page (rendered HTML) served under the app's policy.

    folium writes its code as inline scripts; a fresh nonce on each of them, and in the policy,
    lets those run and nothing else inline. Only the scripts outside ``<body>`` get it: the body
    holds the legend, the one place user text (escaped) enters the page as HTML, and the inline
    scripts carry user text only as JSON, where ``<`` is escaped.
    """
    nonce = base64.b64encode(secrets.token_bytes(18)).decode()
    start, end = page.index("<body>"), page.rindex("</body>")
    tagged = f'<script nonce="{nonce}"'
    page = (
        SCRIPT_TAG.sub(tagged, page[:start]) + page[start:end] + SCRIPT_TAG.sub(tagged, page[end:])
    )
    return HTMLResponse(page, headers=page_headers(settings, script_nonce=nonce))


def page_headers(settings: Settings, *, script_nonce: str | None = None) -> dict[str, str]:
    """The security headers of every HTML page bingeo serves (the app and the maps)."""
    return {
        "Content-Security-Policy": content_security_policy(settings, script_nonce=script_nonce),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }


def content_security_policy(settings: Settings, *, script_nonce: str | None = None) -> str:
    """The pages' policy: scripts and styles only from bingeo (inline scripts only with the
    page's ``script_nonce``, when it has one); images also from the tile server when set."""
    scripts = "'self'" if script_nonce is None else f"'self' 'nonce-{script_nonce}'"
    images = ["'self'", "data:"]
    tiles = tiles_of(settings)
    if tiles:
        parts = urlsplit(tiles["url"].replace("{s}", "a"))
        if parts.scheme and parts.netloc:
            host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tiles["url"] else parts.netloc
            images.append(f"{parts.scheme}://{host}")
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        f"img-src {' '.join(images)}; connect-src 'self'; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
