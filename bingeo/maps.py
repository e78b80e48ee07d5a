"""Folium maps of networks: coloured by kind, styled by lifecycle status, no personal data.

Every text of a map is in Dutch or French (``language``), its scale is metric, and its scripts
and styles come from bingeo's vendored copies: under ``/static/vendor`` for the API's pages,
copied beside the file for maps written to disk (``save_map``), so that no map needs internet.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Callable
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from jinja2 import Template
from pandas.api.types import is_numeric_dtype

from bingeo.errors import InvalidInput
from bingeo.geometry import GEOJSON_EPSG, STORAGE_EPSG
from bingeo.vocabulary import NetworkKind

KIND_COLOURS = {NetworkKind.BIN.value: "#1f6fb4", NetworkKind.BIN_Z.value: "#e6750f"}
LANGUAGES = ("nl", "fr")
# Every text a map shows, per language; {level} is the name of an area level.
TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "BIN": "BIN (bewoners)",
        "BIN-Z": "BIN-Z (zelfstandigen)",
        "idea": "idee",
        "preparation": "in voorbereiding",
        "information_evening": "infoavond",
        "charter": "charter wordt ondertekend",
        "active": "actief",
        "dormant": "slapend",
        "suspended": "geschorst",
        "merged": "samengevoegd",
        "dissolved": "opgeheven",
        "sector": "sector",
        "wijk": "wijk",
        "deelgemeente": "deelgemeente",
        "municipality": "gemeente",
        "police_zone": "politiezone",
        "area": "gebied",
        "network": "Netwerk",
        "kind": "Soort",
        "status": "Status",
        "area_ha": "Oppervlakte (ha)",
        "area_legend": "Oppervlakte",
        "addresses": "Adressen",
        "members": "Leden",
        "covered": "Gedekt",
        "covered_pct": "Gedekt (%)",
        "covered_bin": "Gedekt door een BIN",
        "covered_bin_z": "Gedekt door een BIN-Z",
        "networks": "Netwerken",
        "members_per_1000": "Leden per 1.000 adressen",
        "overlap_m2": "Overlapping (m²)",
        "share_a": "Aandeel van het eerste (%)",
        "share_b": "Aandeel van het tweede (%)",
        "shared_addresses": "Adressen in beide",
        "candidate_zone": "Kandidaat-zone",
        "areas_of_level": "Aantal ({level})",
        "uncovered": "Niet gedekt",
        "codes": "Codes",
        "name": "Naam",
        "nearest_network_m": "Dichtstbijzijnde netwerk (m)",
        "id": "Id",
        "suppression_note": "Leden: minder dan 5 getoond als < 5",
        "overlaps": "Overlappingen",
        "gaps": "Niet-gedekte buurten",
        "gaps_legend": "Niet-gedekte buurten (kandidaat-zones)",
        "share_layer": "Aandeel gedekt per {level}",
        "network_areas": "Adressen van het netwerk per {level}",
        "in_network": "Adressen in het netwerk",
        "reference_areas": "Referentiegebieden",
        "covered_share": "gedekt",
        "no_addresses": "geen adressen",
        "title": "BIN- en BIN-Z-netwerken",
        "network_fallback": "Netwerk",
        "coverage_title": "Dekking van {scope} per {level}",
        "scope_zone": "politiezone {code}",
        "scope_municipality": "gemeente {code}",
        "scope_all": "België",
    },
    "fr": {
        "BIN": "BIN (habitants)",
        "BIN-Z": "BIN-Z (indépendants)",
        "idea": "idée",
        "preparation": "en préparation",
        "information_evening": "soirée d'information",
        "charter": "charte en signature",
        "active": "actif",
        "dormant": "en veille",
        "suspended": "suspendu",
        "merged": "fusionné",
        "dissolved": "dissous",
        "sector": "secteur",
        "wijk": "quartier",
        "deelgemeente": "section de commune",
        "municipality": "commune",
        "police_zone": "zone de police",
        "area": "zone",
        "network": "Réseau",
        "kind": "Type",
        "status": "Statut",
        "area_ha": "Superficie (ha)",
        "area_legend": "Superficie",
        "addresses": "Adresses",
        "members": "Membres",
        "covered": "Couvertes",
        "covered_pct": "Couvertes (%)",
        "covered_bin": "Couvertes par un BIN",
        "covered_bin_z": "Couvertes par un BIN-Z",
        "networks": "Réseaux",
        "members_per_1000": "Membres pour 1 000 adresses",
        "overlap_m2": "Chevauchement (m²)",
        "share_a": "Part du premier (%)",
        "share_b": "Part du second (%)",
        "shared_addresses": "Adresses dans les deux",
        "candidate_zone": "Zone candidate",
        "areas_of_level": "Nombre ({level})",
        "uncovered": "Non couvertes",
        "codes": "Codes",
        "name": "Nom",
        "nearest_network_m": "Réseau le plus proche (m)",
        "id": "Id",
        "suppression_note": "Membres : moins de 5 affichés comme < 5",
        "overlaps": "Chevauchements",
        "gaps": "Quartiers non couverts",
        "gaps_legend": "Quartiers non couverts (zones candidates)",
        "share_layer": "Part couverte par {level}",
        "network_areas": "Adresses du réseau par {level}",
        "in_network": "Adresses dans le réseau",
        "reference_areas": "Zones de référence",
        "covered_share": "couvert",
        "no_addresses": "aucune adresse",
        "title": "Réseaux BIN et BIN-Z",
        "network_fallback": "Réseau",
        "coverage_title": "Couverture de {scope} par {level}",
        "scope_zone": "la zone de police {code}",
        "scope_municipality": "la commune {code}",
        "scope_all": "la Belgique",
    },
}
# Lifecycle phases map to three looks: running (solid), starting (dashed), not running (dotted).
STARTING = {"idea", "preparation", "information_evening", "charter"}
STOPPED = {"dormant", "suspended", "merged", "dissolved"}
_PHASES = [
    "idea",
    "preparation",
    "information_evening",
    "charter",
    "active",
    "dormant",
    "suspended",
    "merged",
    "dissolved",
]
STATUS_STYLES = {
    "running": {"fillOpacity": 0.35, "weight": 2, "dashArray": None},
    "starting": {"fillOpacity": 0.15, "weight": 2, "dashArray": "8 5"},
    "stopped": {"fillOpacity": 0.05, "weight": 1.5, "dashArray": "2 4"},
}
AREA_STYLE = {"color": "#555555", "weight": 1, "fill": False, "opacity": 0.7}
SIMPLIFY_M = 2.0


def network_map(
    networks: gpd.GeoDataFrame,
    *,
    areas: gpd.GeoDataFrame | None = None,
    tiles: str | None = "OpenStreetMap",
    title: str | None = None,
    areas_name: str | None = None,
    assets_url: str | None = None,
    language: str = "nl",
) -> folium.Map:
    """A map of ``networks`` (columns name, kind, status, geometry) with a legend.

    Networks are coloured by kind and styled by lifecycle status, with a tooltip of name, kind,
    status and area in hectares; ``areas`` (column ``name_nl`` or ``code``) is drawn as a thin
    outline layer. Geometries are simplified by about 2 m and shown in EPSG:4326; ``tiles`` None
    gives a map without a base layer (offline). Texts in ``language`` (nl or fr).
    """
    words = texts(language)
    shown = _display_networks(networks, words)
    outlines = _display_areas(areas) if areas is not None and len(areas) else None
    fmap = new_map(tiles, assets_url)
    if outlines is not None:
        folium.GeoJson(
            _to_json(outlines),
            name=html.escape(areas_name or words["reference_areas"]),
            style_function=lambda _feature: AREA_STYLE,
            tooltip=folium.GeoJsonTooltip(fields=["label"], aliases=[""]),
        ).add_to(fmap)
    for kind in KIND_COLOURS:
        layer = shown[shown["kind"] == kind]
        if layer.empty:
            continue
        _network_layer(layer, kind, words).add_to(fmap)
    bounds = _bounds(shown, outlines)
    if bounds is not None:
        fmap.fit_bounds(bounds)
    folium.LayerControl(collapsed=False).add_to(fmap)
    legend = _legend_html(title or words["title"], shown, words)
    fmap.get_root().html.add_child(folium.Element(legend))
    return fmap


def texts(language: str) -> dict[str, str]:
    """The texts of maps in ``language`` (nl or fr)."""
    if language not in TEXTS:
        raise InvalidInput(f"maps speak {' or '.join(LANGUAGES)}, not {language!r}")
    return TEXTS[language]


def coverage_title(
    words: dict[str, str], *, zone: str | None, municipality: str | None, level: str
) -> str:
    """The title of a coverage map: its scope and level in ``words``' language."""
    if zone:
        scope = words["scope_zone"].format(code=zone)
    elif municipality:
        scope = words["scope_municipality"].format(code=municipality)
    else:
        scope = words["scope_all"]
    return words["coverage_title"].format(scope=scope, level=words.get(str(level), str(level)))


def new_map(tiles: str | None, assets_url: str | None) -> folium.Map:
    """An empty folium map: vector layers on a canvas, a metric scale, assets from
    ``assets_url`` (see ``use_assets``)."""
    fmap = use_assets(folium.Map(tiles=tiles, prefer_canvas=True), assets_url)
    MetricScale().add_to(fmap)
    return fmap


class MetricScale(MacroElement):
    """Leaflet's scale bar in metres only (folium's ``control_scale`` shows miles too)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "L.control.scale({imperial: false}).addTo({{ this._parent.get_name() }});"
        "{% endmacro %}"
    )


def _network_layer(layer: gpd.GeoDataFrame, kind: str, words: dict[str, str]) -> folium.GeoJson:
    return folium.GeoJson(
        _to_json(layer),
        name=words[kind],
        style_function=_network_style,
        highlight_function=lambda _feature: {"weight": 4, "fillOpacity": 0.5},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "kind", "status_label", "area_ha"],
            aliases=[words["network"], words["kind"], words["status"], words["area_ha"]],
            localize=True,
        ),
    )


def _display_networks(networks: gpd.GeoDataFrame, words: dict[str, str]) -> gpd.GeoDataFrame:
    # Only public fields leave this function: nothing about members or coordinators.
    metric = networks.to_crs(STORAGE_EPSG) if networks.crs != STORAGE_EPSG else networks
    frame = gpd.GeoDataFrame(
        {
            "name": metric["name"].astype(str).to_numpy(),
            "kind": metric["kind"].astype(str).to_numpy(),
            "status": metric["status"].astype(str).to_numpy(),
            "status_label": [words.get(str(s), str(s)) for s in metric["status"]],
            "area_ha": (metric.geometry.area / 10_000).round(1).to_numpy(),
        },
        # Networks overlap (no coverage), so each is simplified on its own, topology kept.
        geometry=shapely.simplify(metric.geometry.values, SIMPLIFY_M, preserve_topology=True),
        crs=STORAGE_EPSG,
    )
    return frame.to_crs(GEOJSON_EPSG)


def _display_areas(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    metric = areas.to_crs(STORAGE_EPSG) if areas.crs != STORAGE_EPSG else areas
    # Reference areas tile the map: simplifying them as a coverage keeps shared edges shared.
    geometry = shapely.coverage_simplify(metric.geometry.values, SIMPLIFY_M)
    labels = metric["name_nl"] if "name_nl" in metric else metric["code"]
    codes = metric.get("code", labels)
    frame = gpd.GeoDataFrame(
        {"label": [f"{name} ({code})" for name, code in zip(labels, codes, strict=True)]},
        geometry=geometry,
        crs=STORAGE_EPSG,
    )
    return frame.to_crs(GEOJSON_EPSG)


def _network_style(feature: dict) -> dict:
    properties = feature["properties"]
    status = properties["status"]
    look = "starting" if status in STARTING else ("stopped" if status in STOPPED else "running")
    colour = KIND_COLOURS.get(properties["kind"], "#666666")
    return {"color": colour, "fillColor": colour, **STATUS_STYLES[look]}


def _bounds(*frames: gpd.GeoDataFrame | None) -> list[list[float]] | None:
    boxes = [f.total_bounds for f in frames if f is not None and not f.empty]
    if not boxes:
        return None
    minx = min(b[0] for b in boxes)
    miny = min(b[1] for b in boxes)
    maxx = max(b[2] for b in boxes)
    maxy = max(b[3] for b in boxes)
    return [[miny, minx], [maxy, maxx]]


def _legend_html(title: str, shown: gpd.GeoDataFrame, words: dict[str, str]) -> str:
    kinds = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;background:{colour};'
        f'opacity:0.6;border:2px solid {colour};margin-right:6px"></span>'
        f"{html.escape(words[kind])}: {int((shown['kind'] == kind).sum())}</div>"
        for kind, colour in KIND_COLOURS.items()
    )
    looks = (
        ("running", words["active"]),
        ("starting", ", ".join(words[s] for s in sorted(STARTING, key=_PHASES.index))),
        ("stopped", ", ".join(words[s] for s in sorted(STOPPED, key=_PHASES.index))),
    )
    statuses = "".join(
        '<div><svg width="30" height="12" style="margin-right:6px">'
        '<line x1="0" y1="6" x2="30" y2="6" stroke="#333" stroke-width="2" '
        f'stroke-dasharray="{STATUS_STYLES[look]["dashArray"] or ""}"/></svg>'
        f"{html.escape(label)}</div>"
        for look, label in looks
    )
    return (
        '<div id="bingeo-legend" style="position:fixed;bottom:44px;left:12px;z-index:9999;'
        "background:white;padding:8px 10px;border:1px solid #999;border-radius:4px;"
        'font:12px/1.5 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"<b>{html.escape(title)}</b>{kinds}<hr style='margin:4px 0'>{statuses}</div>"
    )


# coverage map ----------------------------------------------------------------------------------

# Vendored copies (scripts/fetch-web-assets.sh) of folium's default JS and CSS, by folium's names;
# the glyphicon and marker-rotation stylesheets serve marker icons only and are left out.
VENDOR_JS = (
    ("leaflet", "leaflet/dist/leaflet.js"),
    ("jquery", "jquery/dist/jquery.min.js"),
    ("bootstrap", "bootstrap/dist/js/bootstrap.bundle.min.js"),
    ("awesome_markers", "leaflet.awesome-markers/dist/leaflet.awesome-markers.js"),
)
VENDOR_CSS = (
    ("leaflet_css", "leaflet/dist/leaflet.css"),
    ("bootstrap_css", "bootstrap/dist/css/bootstrap.min.css"),
    ("awesome_markers_font_css", "@fortawesome/fontawesome-free/css/all.min.css"),
    ("awesome_markers_css", "leaflet.awesome-markers/dist/leaflet.awesome-markers.css"),
)
VENDOR_EXTRAS = ("leaflet/dist/images", "@fortawesome/fontawesome-free/webfonts")
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
SHARE_BINS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
SHARE_COLOURS = ("#f7fcb9", "#d9f0a3", "#addd8e", "#78c679", "#238443")
NO_ADDRESSES = "#dddddd"
OVERLAP_STYLE = {"color": "#c0142b", "fillColor": "#c0142b", "weight": 1.5, "fillOpacity": 0.55}
GAP_STYLE = {
    "color": "#111111",
    "weight": 2.5,
    "dashArray": "6 4",
    "fill": True,
    "fillColor": "#7a0177",
    "fillOpacity": 0.12,
}
COORDINATE_DECIMALS = 6  # about 0.1 m: finer digits only make the file bigger


def use_assets(fmap: folium.Map, assets_url: str | None) -> folium.Map:
    """Make ``fmap`` load its JavaScript and CSS from ``assets_url`` (None: folium's CDNs)."""
    if assets_url is None:
        return fmap
    base = assets_url.rstrip("/")
    fmap.default_js = [(name, f"{base}/{path}") for name, path in VENDOR_JS]
    fmap.default_css = [(name, f"{base}/{path}") for name, path in VENDOR_CSS]
    return fmap


def save_map(map_for: Callable[[str | None], folium.Map], path: Path) -> Path:
    """Write a map to ``path`` (.html) that works from a file without network: the scripts and
    styles it loads are copied into ``<name>_files/`` beside it.

    ``map_for`` builds the map for an assets base URL. Without the vendored assets (run
    scripts/fetch-web-assets.sh) the map falls back to folium's CDN links.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not VENDOR_DIR.is_dir():
        map_for(None).save(str(path))
        return path
    folder = path.parent / f"{path.stem}_files"
    for _name, asset in VENDOR_JS + VENDOR_CSS:
        target = folder / asset
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(VENDOR_DIR / asset, target)
    # What the stylesheets load in turn: Leaflet's control images, Font Awesome's fonts.
    for extra in VENDOR_EXTRAS:
        shutil.copytree(VENDOR_DIR / extra, folder / extra, dirs_exist_ok=True)
    map_for(folder.name).save(str(path))
    return path


def coverage_map(
    areas: gpd.GeoDataFrame,
    networks: gpd.GeoDataFrame,
    *,
    overlaps: gpd.GeoDataFrame | None = None,
    gaps: gpd.GeoDataFrame | None = None,
    tiles: str | None = None,
    assets_url: str | None = None,
    title: str | None = None,
    language: str = "nl",
) -> folium.Map:
    """A coverage map: share covered per area (choropleth), networks by kind and status,
    overlaps highlighted, uncovered neighbourhoods (candidate zones) marked, with a legend.

    ``areas`` carries the figures of ``bingeo.services.coverage.coverage`` (code, name,
    addresses, covered, covered_bin, covered_bin_z, share_covered, networks, members,
    members_per_1000; members may be the text "< 5"); ``overlaps`` and ``gaps`` the frames of
    its overlaps and candidate zones. Only aggregates are shown, as the caller may see them.
    """
    words = texts(language)
    level = words.get(str(areas["level"].iloc[0]) if len(areas) and "level" in areas else "area")
    level = level or words["area"]
    fmap = new_map(tiles, assets_url)
    shown_areas = _display_coverage(areas, language)
    if len(shown_areas):
        folium.GeoJson(
            _to_json(shown_areas),
            name=words["share_layer"].format(level=level),
            style_function=_share_style,
            highlight_function=lambda _feature: {"weight": 2.5, "color": "#000000"},
            tooltip=folium.GeoJsonTooltip(
                fields=[
                    "label",
                    "addresses",
                    "covered",
                    "share_pct",
                    "covered_bin",
                    "covered_bin_z",
                    "networks",
                    "members",
                    "members_per_1000",
                ],
                aliases=[
                    level.capitalize(),
                    words["addresses"],
                    words["covered"],
                    words["covered_pct"],
                    words["covered_bin"],
                    words["covered_bin_z"],
                    words["networks"],
                    words["members"],
                    words["members_per_1000"],
                ],
                localize=True,
            ),
        ).add_to(fmap)
    shown = _display_networks(networks, words) if len(networks) else None
    for kind in KIND_COLOURS:
        if shown is None:
            break
        layer = shown[shown["kind"] == kind]
        if layer.empty:
            continue
        _network_layer(layer, kind, words).add_to(fmap)
    if overlaps is not None and len(overlaps):
        folium.GeoJson(
            _to_json(_display_overlaps(overlaps)),
            name=words["overlaps"],
            style_function=lambda _feature: OVERLAP_STYLE,
            tooltip=folium.GeoJsonTooltip(
                fields=["networks", "overlap_m2", "share_a_pct", "share_b_pct", "shared_addresses"],
                aliases=[words[k] for k in ("networks", "overlap_m2", "share_a", "share_b")]
                + [words["shared_addresses"]],
                localize=True,
            ),
        ).add_to(fmap)
    if gaps is not None and len(gaps):
        folium.GeoJson(
            _to_json(_display_gaps(gaps)),
            name=words["gaps"],
            style_function=lambda _feature: GAP_STYLE,
            tooltip=folium.GeoJsonTooltip(
                fields=["rank", "name", "addresses", "uncovered", "distance_m", "id"],
                aliases=[words["candidate_zone"], words["name"], words["addresses"]]
                + [words["uncovered"], words["nearest_network_m"], words["id"]],
                localize=True,
            ),
        ).add_to(fmap)
    bounds = _bounds(shown_areas, shown)
    if bounds is not None:
        fmap.fit_bounds(bounds)
    folium.LayerControl(collapsed=False).add_to(fmap)
    suppressed = "members" in areas and any(isinstance(v, str) for v in areas["members"])
    legend = _coverage_legend_html(
        title or words["title"],
        shown if shown is not None else _display_none(),
        words,
        suppressed=suppressed,
    )
    fmap.get_root().html.add_child(folium.Element(legend))
    return fmap


def _display_coverage(areas: gpd.GeoDataFrame, language: str) -> gpd.GeoDataFrame:
    metric = areas.to_crs(STORAGE_EPSG) if areas.crs != STORAGE_EPSG else areas
    if not len(metric):
        return gpd.GeoDataFrame(geometry=[], crs=GEOJSON_EPSG)
    # Reference areas tile the map: a coverage simplification keeps shared edges shared.
    geometry = shapely.coverage_simplify(shapely.make_valid(metric.geometry.values), SIMPLIFY_M)
    names = metric["name"].fillna("").astype(str)
    share = metric["share_covered"].astype(float)
    none = pd.Series(None, index=metric.index, dtype=object)  # for optional columns
    frame = gpd.GeoDataFrame(
        {
            "label": [f"{n} ({c})".strip() for n, c in zip(names, metric["code"], strict=True)],
            "addresses": metric["addresses"].astype(int).to_numpy(),
            "covered": metric["covered"].astype(int).to_numpy(),
            "covered_bin": metric["covered_bin"].astype(int).to_numpy(),
            "covered_bin_z": metric["covered_bin_z"].astype(int).to_numpy(),
            "share": share.round(4).to_numpy(),
            "share_pct": (share * 100).round(1).fillna(-1).to_numpy(),
            "networks": metric["networks"].astype(int).to_numpy(),
            "members": [_count_text(v, language) for v in metric.get("members", none)],
            "members_per_1000": [
                "–" if pd.isna(v) else f"{v:,.1f}" for v in metric["members_per_1000"].astype(float)
            ],
        },
        geometry=geometry,
        crs=STORAGE_EPSG,
    )
    return frame.to_crs(GEOJSON_EPSG)


def _display_overlaps(overlaps: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {
            "networks": [
                f"{a} / {b}" for a, b in zip(overlaps["name_a"], overlaps["name_b"], strict=True)
            ],
            "overlap_m2": overlaps["overlap_m2"].round(0).to_numpy(),
            "share_a_pct": (overlaps["share_a"] * 100).round(1).to_numpy(),
            "share_b_pct": (overlaps["share_b"] * 100).round(1).to_numpy(),
            "shared_addresses": overlaps["shared_addresses"].astype(int).to_numpy(),
        },
        geometry=shapely.simplify(overlaps.geometry.values, SIMPLIFY_M, preserve_topology=True),
        crs=overlaps.crs,
    )
    return frame.to_crs(GEOJSON_EPSG)


def _display_gaps(gaps: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    none = pd.Series(None, index=gaps.index, dtype=object)  # for optional columns
    frame = gpd.GeoDataFrame(
        {
            "rank": gaps["rank"].astype(int).to_numpy(),
            "name": gaps.get("name", gaps["codes"]).astype(str).to_numpy(),
            "addresses": gaps["addresses"].astype(int).to_numpy(),
            "uncovered": gaps["uncovered"].astype(int).to_numpy(),
            "distance_m": [
                "–" if pd.isna(d) else f"{float(d):,.0f}" for d in gaps.get("distance_m", none)
            ],
            "id": gaps.get("id", none).fillna("").astype(str).to_numpy(),
            "codes": gaps["codes"].astype(str).to_numpy(),
        },
        geometry=shapely.simplify(gaps.geometry.values, SIMPLIFY_M, preserve_topology=True),
        crs=gaps.crs,
    )
    return frame.to_crs(GEOJSON_EPSG)


def _count_text(value: object, language: str) -> str:
    """A count as text: exact counts written the Belgian way, suppressed ones as they are."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return _number(int(value), 0, language) if isinstance(value, int | np.integer) else str(value)


def _display_none() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"kind": []}, geometry=[], crs=GEOJSON_EPSG)


def _to_json(frame: gpd.GeoDataFrame) -> str:
    """The frame as the GeoJSON a map layer carries: coordinates rounded, texts HTML-escaped.

    folium's tooltips put property values into the page as HTML (``innerHTML``), so every
    text (names, codes, labels: user data) is escaped here, the one way into a map's layers.
    """
    polygons = [_polygonal(geometry) for geometry in frame.geometry.values]
    kept = [polygon is not None for polygon in polygons]
    rounded = frame[kept].set_geometry(
        shapely.transform(
            [p for p in polygons if p is not None], lambda c: c.round(COORDINATE_DECIMALS)
        ),
        crs=frame.crs,
    )
    for column in rounded.columns.drop(rounded.geometry.name):
        if not is_numeric_dtype(rounded[column]):
            rounded[column] = [
                html.escape(value) if isinstance(value, str) else value for value in rounded[column]
            ]
    return rounded.to_json(drop_id=True)


def _polygonal(geometry: shapely.Geometry | None) -> shapely.Geometry | None:
    """The areal part of ``geometry``; None when it has none.

    Intersections and repairs can give a GeometryCollection (an area with a stray line or
    point). Leaflet draws one as a group of layers, where a map's tooltips expect one shape per
    feature and stop the whole page (``getElement is not a function``).
    """
    if geometry is None or geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [
        part
        for part in shapely.get_parts(shapely.get_parts(geometry))
        if part.geom_type == "Polygon" and not part.is_empty
    ]
    return shapely.MultiPolygon(parts) if parts else None


def _share_style(feature: dict) -> dict:
    share = feature["properties"]["share"]
    colour = NO_ADDRESSES if share is None else SHARE_COLOURS[-1]
    if share is not None:
        for upper, candidate in zip(SHARE_BINS[1:], SHARE_COLOURS, strict=True):
            if share < upper:
                colour = candidate
                break
    return {"color": "#666666", "weight": 0.7, "fillColor": colour, "fillOpacity": 0.7}


def _coverage_legend_html(
    title: str, shown: gpd.GeoDataFrame, words: dict[str, str], *, suppressed: bool
) -> str:
    box = (
        '<span style="display:inline-block;width:14px;height:14px;background:{fill};'
        'border:1px solid {line};margin-right:6px;vertical-align:middle"></span>'
    )
    bins = "".join(
        f"<div>{box.format(fill=colour, line='#666')}"
        f"{low * 100:.0f}–{high * 100:.0f} % {words['covered_share']}</div>"
        for low, high, colour in zip(SHARE_BINS[:-1], SHARE_BINS[1:], SHARE_COLOURS, strict=True)
    )
    bins += f"<div>{box.format(fill=NO_ADDRESSES, line='#666')}{words['no_addresses']}</div>"
    extras = (
        f"<div>{box.format(fill=OVERLAP_STYLE['fillColor'], line=OVERLAP_STYLE['color'])}"
        f"{html.escape(words['overlaps'])}</div>"
        f"<div>{box.format(fill='#e8d5ec', line='#111')}{html.escape(words['gaps_legend'])}</div>"
    )
    if suppressed:
        extras += f"<div>{html.escape(words['suppression_note'])}</div>"
    networks = _legend_html(title, shown, words)
    # The network legend's box is reused; the coverage part goes inside it.
    return networks.replace("</div>", "</div>" + "<hr style='margin:4px 0'>" + bins + extras, 1)


# map of one network -----------------------------------------------------------------------------

NETWORK_AREA_STYLE = {"color": "#444444", "weight": 1, "fillColor": "#ffffff", "fillOpacity": 0.0}


def single_network_map(
    network: gpd.GeoDataFrame,
    figures: dict,
    areas: gpd.GeoDataFrame,
    *,
    tiles: str | None = None,
    assets_url: str | None = None,
    level: str = "sector",
    language: str = "nl",
) -> folium.Map:
    """The map of one network (``network``: one row with name, kind, status, geometry): its
    area, the addresses it covers and its members, counted (``figures``: addresses, members,
    members_per_1000), and the reference areas it reaches with its addresses in each
    (``areas``: code, name, addresses). Counts only: no member, no address is drawn.
    """
    words = texts(language)
    level_name = words.get(level, level)
    fmap = new_map(tiles, assets_url)
    shown = _display_networks(network, words)
    shown["addresses"] = int(figures["addresses"])
    shown["members"] = figures["members"]  # "< 5" for roles without member rights
    per_1000 = figures["members_per_1000"]
    shown["members_per_1000"] = None if per_1000 is None else round(float(per_1000), 1)
    if len(areas):
        metric = areas.to_crs(STORAGE_EPSG) if areas.crs != STORAGE_EPSG else areas
        outlines = gpd.GeoDataFrame(
            {
                "label": [
                    f"{n or ''} ({c})".strip()
                    for n, c in zip(metric["name"], metric["code"], strict=True)
                ],
                "addresses": metric["addresses"].astype(int).to_numpy(),
            },
            geometry=shapely.simplify(metric.geometry.values, SIMPLIFY_M, preserve_topology=True),
            crs=STORAGE_EPSG,
        ).to_crs(GEOJSON_EPSG)
        folium.GeoJson(
            _to_json(outlines),
            name=words["network_areas"].format(level=level_name),
            style_function=lambda _feature: NETWORK_AREA_STYLE,
            tooltip=folium.GeoJsonTooltip(
                fields=["label", "addresses"],
                aliases=[level_name.capitalize(), words["in_network"]],
                localize=True,
            ),
        ).add_to(fmap)
    if len(shown):
        folium.GeoJson(
            _to_json(shown),
            name=words.get(str(shown["kind"].iloc[0]), words["network_fallback"]),
            style_function=_network_style,
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "kind", "status_label", "area_ha", "addresses", "members"]
                + ["members_per_1000"],
                aliases=[words[k] for k in ("network", "kind", "status", "area_ha", "addresses")]
                + [words["members"], words["members_per_1000"]],
                localize=True,
            ),
        ).add_to(fmap)
        bounds = _bounds(shown)
        if bounds is not None:
            fmap.fit_bounds(bounds)
    folium.LayerControl(collapsed=False).add_to(fmap)
    legend = _network_legend_html(shown, figures, words, language)
    fmap.get_root().html.add_child(folium.Element(legend))
    return fmap


def _network_legend_html(
    shown: gpd.GeoDataFrame, figures: dict, words: dict[str, str], language: str
) -> str:
    name = str(shown["name"].iloc[0]) if len(shown) else ""
    area = float(shown["area_ha"].iloc[0]) if len(shown) else 0.0
    per_1000 = figures["members_per_1000"]
    rows = (
        (words["area_legend"], f"{_number(area, 1, language)} ha"),
        (words["addresses"], _number(int(figures["addresses"]), 0, language)),
        (words["members"], _count_text(figures["members"], language)),
        (words["members_per_1000"], "–" if per_1000 is None else _number(per_1000, 1, language)),
    )
    body = "".join(
        f"<div>{html.escape(label)}: <b>{html.escape(value)}</b></div>" for label, value in rows
    )
    return _legend_html(name, shown, words).replace("</b>", "</b>" + body, 1)


def _number(value: float, decimals: int, language: str) -> str:
    """``value`` written the Belgian way: 1.234,5 in Dutch, 1 234,5 in French."""
    text = f"{value:,.{decimals}f}"
    thousands = "." if language == "nl" else "\u202f"
    return text.replace(",", "\0").replace(".", ",").replace("\0", thousands)
