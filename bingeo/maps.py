"""Folium maps of networks: coloured by kind, styled by lifecycle status, no personal data."""

from __future__ import annotations

import html

import folium
import geopandas as gpd
import shapely

from bingeo.db.models import NetworkKind, NetworkStatus
from bingeo.geometry import GEOJSON_EPSG, STORAGE_EPSG

KIND_COLOURS = {NetworkKind.BIN.value: "#1f6fb4", NetworkKind.BIN_Z.value: "#e6750f"}
KIND_LABELS = {
    NetworkKind.BIN.value: "BIN (residents)",
    NetworkKind.BIN_Z.value: "BIN-Z (self-employed)",
}
STATUS_LABELS = {
    NetworkStatus.idea.value: "idea",
    NetworkStatus.preparation.value: "in preparation",
    NetworkStatus.information_evening.value: "information evening",
    NetworkStatus.charter.value: "charter being signed",
    NetworkStatus.active.value: "active",
    NetworkStatus.dormant.value: "dormant",
    NetworkStatus.suspended.value: "suspended",
    NetworkStatus.merged.value: "merged",
    NetworkStatus.dissolved.value: "dissolved",
}
# Lifecycle phases map to three looks: running (solid), starting (dashed), not running (dotted).
STARTING = {"idea", "preparation", "information_evening", "charter"}
STOPPED = {"dormant", "suspended", "merged", "dissolved"}
STATUS_STYLES = {
    "running": {"fillOpacity": 0.35, "weight": 2, "dashArray": None},
    "starting": {"fillOpacity": 0.15, "weight": 2, "dashArray": "8 5"},
    "stopped": {"fillOpacity": 0.05, "weight": 1.5, "dashArray": "2 4"},
}
AREA_STYLE = {"color": "#555555", "weight": 1, "fill": False, "opacity": 0.7}
SIMPLIFY_M = 2.0
DEFAULT_TITLE = "BIN and BIN-Z networks"


def network_map(
    networks: gpd.GeoDataFrame,
    *,
    areas: gpd.GeoDataFrame | None = None,
    tiles: str | None = "OpenStreetMap",
    title: str = DEFAULT_TITLE,
    areas_name: str = "Reference areas",
) -> folium.Map:
    """A map of ``networks`` (columns name, kind, status, geometry) with a legend.

    Networks are coloured by kind and styled by lifecycle status, with a tooltip of name, kind,
    status and area in hectares; ``areas`` (column ``name_nl`` or ``code``) is drawn as a thin
    outline layer. Geometries are simplified by about 2 m and shown in EPSG:4326; ``tiles`` None
    gives a map without a base layer (offline).
    """
    shown = _display_networks(networks)
    outlines = _display_areas(areas) if areas is not None and len(areas) else None
    fmap = folium.Map(tiles=tiles, control_scale=True, prefer_canvas=True)
    if outlines is not None:
        folium.GeoJson(
            outlines.to_json(),
            name=areas_name,
            style_function=lambda _feature: AREA_STYLE,
            tooltip=folium.GeoJsonTooltip(fields=["label"], aliases=[""]),
        ).add_to(fmap)
    for kind in KIND_COLOURS:
        layer = shown[shown["kind"] == kind]
        if layer.empty:
            continue
        folium.GeoJson(
            layer.to_json(),
            name=KIND_LABELS[kind],
            style_function=_network_style,
            highlight_function=lambda _feature: {"weight": 4, "fillOpacity": 0.5},
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "kind", "status_label", "area_ha"],
                aliases=["Network", "Kind", "Status", "Area (ha)"],
                localize=True,
            ),
        ).add_to(fmap)
    bounds = _bounds(shown, outlines)
    if bounds is not None:
        fmap.fit_bounds(bounds)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(_legend_html(title, shown)))
    return fmap


def _display_networks(networks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    # Only public fields leave this function: nothing about members or coordinators.
    metric = networks.to_crs(STORAGE_EPSG) if networks.crs != STORAGE_EPSG else networks
    frame = gpd.GeoDataFrame(
        {
            "name": metric["name"].astype(str).to_numpy(),
            "kind": metric["kind"].astype(str).to_numpy(),
            "status": metric["status"].astype(str).to_numpy(),
            "status_label": [STATUS_LABELS.get(str(s), str(s)) for s in metric["status"]],
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


def _legend_html(title: str, shown: gpd.GeoDataFrame) -> str:
    kinds = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;background:{colour};'
        f'opacity:0.6;border:2px solid {colour};margin-right:6px"></span>'
        f"{html.escape(KIND_LABELS[kind])}: {int((shown['kind'] == kind).sum())}</div>"
        for kind, colour in KIND_COLOURS.items()
    )
    looks = (
        ("running", "active"),
        ("starting", "idea, preparation, information evening, charter"),
        ("stopped", "dormant, suspended, merged, dissolved"),
    )
    statuses = "".join(
        '<div><svg width="30" height="12" style="margin-right:6px">'
        '<line x1="0" y1="6" x2="30" y2="6" stroke="#333" stroke-width="2" '
        f'stroke-dasharray="{STATUS_STYLES[look]["dashArray"] or ""}"/></svg>'
        f"{html.escape(label)}</div>"
        for look, label in looks
    )
    return (
        '<div id="bingeo-legend" style="position:fixed;bottom:24px;left:12px;z-index:9999;'
        "background:white;padding:8px 10px;border:1px solid #999;border-radius:4px;"
        'font:12px/1.5 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"<b>{html.escape(title)}</b>{kinds}<hr style='margin:4px 0'>{statuses}</div>"
    )
