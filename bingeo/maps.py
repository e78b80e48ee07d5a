"""Folium maps of networks: coloured by kind, styled by lifecycle status, no personal data."""

from __future__ import annotations

import html

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pandas.api.types import is_numeric_dtype

from bingeo.geometry import GEOJSON_EPSG, STORAGE_EPSG
from bingeo.vocabulary import NetworkKind, NetworkStatus

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
            _to_json(outlines),
            name=html.escape(areas_name),
            style_function=lambda _feature: AREA_STYLE,
            tooltip=folium.GeoJsonTooltip(fields=["label"], aliases=[""]),
        ).add_to(fmap)
    for kind in KIND_COLOURS:
        layer = shown[shown["kind"] == kind]
        if layer.empty:
            continue
        folium.GeoJson(
            _to_json(layer),
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
LAYER_OVERLAPS = "Overlaps"
LAYER_GAPS = "Uncovered neighbourhoods"
SUPPRESSION_NOTE = "Members: fewer than 5 shown as < 5"


def use_assets(fmap: folium.Map, assets_url: str | None) -> folium.Map:
    """Make ``fmap`` load its JavaScript and CSS from ``assets_url`` (None: folium's CDNs)."""
    if assets_url is None:
        return fmap
    base = assets_url.rstrip("/")
    fmap.default_js = [(name, f"{base}/{path}") for name, path in VENDOR_JS]
    fmap.default_css = [(name, f"{base}/{path}") for name, path in VENDOR_CSS]
    return fmap


def coverage_map(
    areas: gpd.GeoDataFrame,
    networks: gpd.GeoDataFrame,
    *,
    overlaps: gpd.GeoDataFrame | None = None,
    gaps: gpd.GeoDataFrame | None = None,
    tiles: str | None = None,
    assets_url: str | None = None,
    title: str = "Coverage",
) -> folium.Map:
    """A coverage map: share covered per area (choropleth), networks by kind and status,
    overlaps highlighted, uncovered neighbourhoods (candidate zones) marked, with a legend.

    ``areas`` carries the figures of ``bingeo.services.coverage.coverage`` (code, name,
    addresses, covered, covered_bin, covered_bin_z, share_covered, networks, members,
    members_per_1000; members may be the text "< 5"); ``overlaps`` and ``gaps`` the frames of
    its overlaps and candidate zones. Only aggregates are shown, as the caller may see them.
    """
    level = str(areas["level"].iloc[0]) if len(areas) and "level" in areas else "area"
    fmap = use_assets(folium.Map(tiles=tiles, control_scale=True, prefer_canvas=True), assets_url)
    shown_areas = _display_coverage(areas)
    if len(shown_areas):
        folium.GeoJson(
            _to_json(shown_areas),
            name=f"Coverage share per {level}",
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
                    "Addresses",
                    "Covered",
                    "Covered (%)",
                    "Covered by a BIN",
                    "Covered by a BIN-Z",
                    "Networks",
                    "Members",
                    "Members per 1,000 addresses",
                ],
                localize=True,
            ),
        ).add_to(fmap)
    shown = _display_networks(networks) if len(networks) else None
    for kind in KIND_COLOURS:
        if shown is None:
            break
        layer = shown[shown["kind"] == kind]
        if layer.empty:
            continue
        folium.GeoJson(
            _to_json(layer),
            name=KIND_LABELS[kind],
            style_function=_network_style,
            highlight_function=lambda _feature: {"weight": 4, "fillOpacity": 0.5},
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "kind", "status_label", "area_ha"],
                aliases=["Network", "Kind", "Status", "Area (ha)"],
                localize=True,
            ),
        ).add_to(fmap)
    if overlaps is not None and len(overlaps):
        folium.GeoJson(
            _to_json(_display_overlaps(overlaps)),
            name=LAYER_OVERLAPS,
            style_function=lambda _feature: OVERLAP_STYLE,
            tooltip=folium.GeoJsonTooltip(
                fields=["networks", "overlap_m2", "share_a_pct", "share_b_pct", "shared_addresses"],
                aliases=["Networks", "Overlap (m²)", "Share of first (%)", "Share of second (%)"]
                + ["Addresses in both"],
                localize=True,
            ),
        ).add_to(fmap)
    if gaps is not None and len(gaps):
        folium.GeoJson(
            _to_json(_display_gaps(gaps)),
            name=LAYER_GAPS,
            style_function=lambda _feature: GAP_STYLE,
            tooltip=folium.GeoJsonTooltip(
                fields=["rank", "name", "addresses", "uncovered", "distance_m", "id"],
                aliases=["Candidate zone", "Name", "Addresses", "Uncovered"]
                + ["Nearest network (m)", "Id"],
                localize=True,
            ),
        ).add_to(fmap)
    bounds = _bounds(shown_areas, shown)
    if bounds is not None:
        fmap.fit_bounds(bounds)
    folium.LayerControl(collapsed=False).add_to(fmap)
    suppressed = "members" in areas and any(isinstance(v, str) for v in areas["members"])
    legend = _coverage_legend_html(
        title, shown if shown is not None else _display_none(), suppressed=suppressed
    )
    fmap.get_root().html.add_child(folium.Element(legend))
    return fmap


def _display_coverage(areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
            "members": [_count_text(v) for v in metric.get("members", none)],
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


def _count_text(value: object) -> str:
    """A count as text: exact counts with thousands separators, suppressed ones as they are."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{int(value):,}" if isinstance(value, int | np.integer) else str(value)


def _display_none() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"kind": []}, geometry=[], crs=GEOJSON_EPSG)


def _to_json(frame: gpd.GeoDataFrame) -> str:
    """The frame as the GeoJSON a map layer carries: coordinates rounded, texts HTML-escaped.

    folium's tooltips put property values into the page as HTML (``innerHTML``), so every
    text (names, codes, labels: user data) is escaped here, the one way into a map's layers.
    """
    rounded = frame.set_geometry(
        shapely.transform(frame.geometry.values, lambda c: c.round(COORDINATE_DECIMALS))
    )
    for column in rounded.columns.drop(rounded.geometry.name):
        if not is_numeric_dtype(rounded[column]):
            rounded[column] = [
                html.escape(value) if isinstance(value, str) else value for value in rounded[column]
            ]
    return rounded.to_json(drop_id=True)


def _share_style(feature: dict) -> dict:
    share = feature["properties"]["share"]
    colour = NO_ADDRESSES if share is None else SHARE_COLOURS[-1]
    if share is not None:
        for upper, candidate in zip(SHARE_BINS[1:], SHARE_COLOURS, strict=True):
            if share < upper:
                colour = candidate
                break
    return {"color": "#666666", "weight": 0.7, "fillColor": colour, "fillOpacity": 0.7}


def _coverage_legend_html(title: str, shown: gpd.GeoDataFrame, *, suppressed: bool) -> str:
    box = (
        '<span style="display:inline-block;width:14px;height:14px;background:{fill};'
        'border:1px solid {line};margin-right:6px;vertical-align:middle"></span>'
    )
    bins = "".join(
        f"<div>{box.format(fill=colour, line='#666')}"
        f"{low * 100:.0f}–{high * 100:.0f} % covered</div>"
        for low, high, colour in zip(SHARE_BINS[:-1], SHARE_BINS[1:], SHARE_COLOURS, strict=True)
    )
    bins += f"<div>{box.format(fill=NO_ADDRESSES, line='#666')}no addresses</div>"
    extras = (
        f"<div>{box.format(fill=OVERLAP_STYLE['fillColor'], line=OVERLAP_STYLE['color'])}"
        f"{LAYER_OVERLAPS}</div>"
        f"<div>{box.format(fill='#e8d5ec', line='#111')}{LAYER_GAPS} (candidate zones)</div>"
    )
    if suppressed:
        extras += f"<div>{html.escape(SUPPRESSION_NOTE)}</div>"
    networks = _legend_html(title, shown)
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
) -> folium.Map:
    """The map of one network (``network``: one row with name, kind, status, geometry): its
    area, the addresses it covers and its members, counted (``figures``: addresses, members,
    members_per_1000), and the reference areas it reaches with its addresses in each
    (``areas``: code, name, addresses). Counts only: no member, no address is drawn.
    """
    fmap = use_assets(folium.Map(tiles=tiles, control_scale=True, prefer_canvas=True), assets_url)
    shown = _display_networks(network)
    shown["addresses"] = int(figures["addresses"])
    shown["members"] = figures["members"]
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
            name=f"Addresses of the network per {level}",
            style_function=lambda _feature: NETWORK_AREA_STYLE,
            tooltip=folium.GeoJsonTooltip(
                fields=["label", "addresses"],
                aliases=[level.capitalize(), "Addresses in the network"],
                localize=True,
            ),
        ).add_to(fmap)
    if len(shown):
        folium.GeoJson(
            _to_json(shown),
            name=KIND_LABELS.get(str(shown["kind"].iloc[0]), "Network"),
            style_function=_network_style,
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "kind", "status_label", "area_ha", "addresses", "members"]
                + ["members_per_1000"],
                aliases=["Network", "Kind", "Status", "Area (ha)", "Addresses", "Members"]
                + ["Members per 1,000 addresses"],
                localize=True,
            ),
        ).add_to(fmap)
        bounds = _bounds(shown)
        if bounds is not None:
            fmap.fit_bounds(bounds)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(_network_legend_html(shown, figures)))
    return fmap


def _network_legend_html(shown: gpd.GeoDataFrame, figures: dict) -> str:
    name = str(shown["name"].iloc[0]) if len(shown) else ""
    area = float(shown["area_ha"].iloc[0]) if len(shown) else 0.0
    per_1000 = figures["members_per_1000"]
    rows = (
        ("Area", f"{area:,.1f} ha"),
        ("Addresses", f"{int(figures['addresses']):,}"),
        ("Members", _count_text(figures["members"])),
        ("Members per 1,000 addresses", "–" if per_1000 is None else f"{per_1000:,.1f}"),
    )
    body = "".join(
        f"<div>{html.escape(label)}: <b>{html.escape(value)}</b></div>" for label, value in rows
    )
    return _legend_html(name, shown).replace("</b>", "</b>" + body, 1)
