"""A synthetic, deterministic Flemish municipality ("Demodorp") for the demo and for tests.

Everything is generated from one seed with a numpy ``Generator`` in EPSG:31370: a municipality,
its deelgemeenten, wijken and statistical sectors (tiling it exactly), a police zone, named
streets with addresses along them, and BIN / BIN-Z networks with overlaps and uncovered wijken.
``write_demo_files`` writes them in the formats the importers read.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from bingeo.vocabulary import NetworkKind, NetworkStatus

DEMO_SEED = 20190527  # the date of the 2019 BIN circular
NIS_CODE = "99001"
MUNICIPALITY = "Demodorp"
POSTCODE = "2999"
POLICE_ZONE_CODE = "demo1"
POLICE_ZONE_NAME = "PZ Demo"
CENTRE = (150_000.0, 180_000.0)
RADIUS_M = 2_700.0
SECTOR_SPACING_M = 650.0
WIJK_COUNT = 8
UNCOVERED_WIJKEN = 2
UNLOCATED_ADDRESSES = 300
ADDRESS_COLUMNS = (
    "street",
    "housenumber",
    "box",
    "postcode",
    "municipality",
    "nis_code",
    "lat",
    "lon",
)
# GeoPackages stamp the write time into their metadata; a fixed date keeps the file identical.
FIXED_GPKG_DATE = "2019-05-27T00:00:00.000Z"

DEELGEMEENTEN = (("A", "Demodorp"), ("B", "Oosterhoek"), ("C", "Westveld"))
WIJK_NAMES = (
    "Centrum",
    "Stationswijk",
    "Molenhoek",
    "Kerkveld",
    "Heide",
    "Boskant",
    "Broek",
    "Hoogveld",
    "Vijverwijk",
    "Kouter",
)
MAIN_ROADS = (
    "Stationsstraat",
    "Kerkstraat",
    "Mechelsesteenweg",
    "Brusselsesteenweg",
    "Molenweg",
    "Dorpsstraat",
)
RING_ROAD = "Koning Albertlaan"
LOCAL_STREETS = (
    "Schoolstraat",
    "Nieuwstraat",
    "Kapelstraat",
    "Beekstraat",
    "Veldstraat",
    "Lindenlaan",
    "Eikenlaan",
    "Berkenlaan",
    "Populierenlaan",
    "Kastanjelaan",
    "Heidestraat",
    "Bosstraat",
    "Broekstraat",
    "Hoogstraat",
    "Leopoldstraat",
    "Koningin Astridlaan",
    "Prins Boudewijnlaan",
    "Pastoor Deckersstraat",
    "Burgemeester Van Dammestraat",
    "Sint-Jozefstraat",
    "Sint-Martinusplein",
    "Vijverstraat",
    "Kouterstraat",
    "Akkerstraat",
    "Weidestraat",
    "Boomgaardstraat",
    "Hofstraat",
    "Kloosterstraat",
    "Pastorijstraat",
    "Smidsestraat",
    "Bakkerstraat",
    "Brouwerijstraat",
    "Vlasstraat",
    "Meidoornstraat",
    "Rozenstraat",
    "Tulpenstraat",
    "Zonnebloemstraat",
    "Kievitlaan",
    "Merelstraat",
    "Zwaluwstraat",
    "Leeuwerikstraat",
    "Ooievaarstraat",
    "Hazelaarstraat",
    "Wilgenstraat",
    "Esdoornlaan",
    "Ringlaan",
    "Industrieweg",
    "Ambachtenstraat",
    "Nijverheidsstraat",
    "Handelsstraat",
    "Vredestraat",
    "Kruisstraat",
)
BUSINESS_STREETS = ("Industrieweg", "Ambachtenstraat", "Nijverheidsstraat", "Handelsstraat")
# Statuses of the BINs in the order they are built: mostly active, one of each other phase.
BIN_STATUSES = {
    2: NetworkStatus.preparation,
    5: NetworkStatus.dormant,
    8: NetworkStatus.information_evening,
    10: NetworkStatus.charter,
    12: NetworkStatus.idea,
}
_TO_WGS84 = Transformer.from_crs(31370, 4326, always_xy=True)


@dataclass
class DemoData:
    """The generated municipality, all in EPSG:31370."""

    municipality: gpd.GeoDataFrame
    police_zone: gpd.GeoDataFrame
    deelgemeenten: gpd.GeoDataFrame
    wijken: gpd.GeoDataFrame
    sectors: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame  # name, geometry (LineString)
    addresses: pd.DataFrame  # street, housenumber, box, postcode, ..., x, y (NaN: unlocated)
    networks: gpd.GeoDataFrame  # code, name, kind, status, nis_code, police_zone_code, geometry


@dataclass(frozen=True)
class DemoFile:
    """One written file and how to import it."""

    kind: str  # an AreaLevel value, "addresses" or "networks"
    path: Path
    layer: str | None = None


def generate_demo(seed: int = DEMO_SEED) -> DemoData:
    """Generate the demo municipality; the same seed always gives the same data."""
    rng = np.random.default_rng(seed)
    boundary = _municipality_polygon(rng)
    sectors = _sector_cells(rng, boundary)
    wijk_of_sector, deelgemeente_of_wijk = _group_sectors(sectors)
    streets = _streets(rng, boundary)
    addresses = _addresses(rng, streets, boundary)

    sector_frame, wijk_frame, deel_frame = _area_frames(
        sectors, wijk_of_sector, deelgemeente_of_wijk
    )
    municipality = gpd.GeoDataFrame(
        {"nis_code": [NIS_CODE], "name_nl": [MUNICIPALITY], "name_fr": [None]},
        geometry=[MultiPolygon([boundary])],
        crs=31370,
    )
    police_zone = gpd.GeoDataFrame(
        {
            "police_zone_code": [POLICE_ZONE_CODE],
            "police_zone_name": [POLICE_ZONE_NAME],
            "member_nis_codes": [NIS_CODE],
        },
        geometry=[MultiPolygon([boundary])],
        crs=31370,
    )
    networks = _networks(rng, boundary, streets, sector_frame, wijk_frame)
    return DemoData(
        municipality=municipality,
        police_zone=police_zone,
        deelgemeenten=deel_frame,
        wijken=wijk_frame,
        sectors=sector_frame,
        streets=streets,
        addresses=addresses,
        networks=networks,
    )


def write_demo_files(data: DemoData, folder: Path) -> list[DemoFile]:
    """Write the demo data into ``folder`` in import order; returns what was written.

    The municipality and the networks are RFC 7946 GeoJSON (EPSG:4326), the police zone GeoJSON
    in EPSG:31370 with a ``crs`` member, the smaller reference areas one GeoPackage with a layer
    per level, and the addresses a CSV with WGS84 lat/lon.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        DemoFile("municipality", folder / "municipality.geojson"),
        DemoFile("police_zone", folder / "police_zone.geojson"),
        DemoFile("deelgemeente", folder / "reference.gpkg", "deelgemeenten"),
        DemoFile("wijk", folder / "reference.gpkg", "wijken"),
        DemoFile("sector", folder / "reference.gpkg", "sectors"),
        DemoFile("addresses", folder / "addresses.csv"),
        DemoFile("networks", folder / "networks.geojson"),
    ]
    _write_geojson(data.municipality.to_crs(4326), files[0].path, rfc7946=True)
    _write_geojson(data.police_zone, files[1].path, rfc7946=False)
    files[2].path.unlink(missing_ok=True)
    with _fixed_gpkg_date():
        for frame, demo_file in (
            (data.deelgemeenten, files[2]),
            (data.wijken, files[3]),
            (data.sectors, files[4]),
        ):
            frame.to_file(demo_file.path, layer=demo_file.layer, driver="GPKG", engine="pyogrio")
    _addresses_csv(data.addresses).to_csv(files[5].path, index=False, lineterminator="\n")
    _write_geojson(data.networks.to_crs(4326), files[6].path, rfc7946=True)
    return files


# municipality and statistical areas -------------------------------------------------------------


def _municipality_polygon(rng: np.random.Generator) -> Polygon:
    # A star-shaped outline with a few random harmonics: irregular, yet simple and valid.
    angles = np.linspace(0.0, 2 * math.pi, 120, endpoint=False)
    radius = np.ones_like(angles)
    for harmonic, amplitude in ((2, 0.13), (3, 0.09), (5, 0.05), (9, 0.02)):
        radius += amplitude * np.sin(harmonic * angles + rng.uniform(0, 2 * math.pi))
    radius *= RADIUS_M * (1 + rng.normal(0, 0.006, angles.size))
    xs = CENTRE[0] + radius * np.cos(angles)
    ys = CENTRE[1] + radius * np.sin(angles)
    return shapely.set_precision(Polygon(np.column_stack([xs, ys])), 0.01)


def _sector_cells(rng: np.random.Generator, boundary: Polygon) -> list[BaseGeometry]:
    # Jittered grid seeds, Voronoi cells clipped to the municipality: an exact tiling.
    minx, miny, maxx, maxy = boundary.bounds
    gx, gy = np.meshgrid(
        np.arange(minx, maxx + SECTOR_SPACING_M, SECTOR_SPACING_M),
        np.arange(miny, maxy + SECTOR_SPACING_M, SECTOR_SPACING_M),
    )
    xs = gx.ravel() + rng.uniform(-0.35, 0.35, gx.size) * SECTOR_SPACING_M
    ys = gy.ravel() + rng.uniform(-0.35, 0.35, gy.size) * SECTOR_SPACING_M
    inside = shapely.contains_xy(boundary.buffer(-SECTOR_SPACING_M / 4), xs, ys)
    seeds = shapely.multipoints(np.column_stack([xs[inside], ys[inside]]))
    cells = shapely.voronoi_polygons(seeds, extend_to=boundary.buffer(SECTOR_SPACING_M))
    clipped = [shapely.set_precision(c.intersection(boundary), 0.01) for c in cells.geoms]
    clipped = [c for c in clipped if c.area > 0.0]
    # Order sectors from the centre outwards so codes read naturally.
    return sorted(clipped, key=lambda c: (_distance_to_centre(c), c.centroid.x))


def _group_sectors(sectors: list[BaseGeometry]) -> tuple[list[int], list[int]]:
    centroids = np.array([[c.centroid.x, c.centroid.y] for c in sectors])
    # Wijk seeds by farthest-point sampling: spread out, deterministic, starting in the centre.
    chosen = [0]
    distance = np.hypot(*(centroids - centroids[0]).T)
    while len(chosen) < WIJK_COUNT:
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.hypot(*(centroids - centroids[nxt]).T))
    seeds = centroids[chosen]
    wijk_of_sector = [
        int(np.argmin(np.hypot(*(seeds - point).T))) for point in centroids
    ]  # 0 is the centre wijk
    # Deelgemeenten: the centre wijk and its sector of the compass form A, the rest split by angle.
    angles = np.degrees(np.arctan2(seeds[:, 1] - CENTRE[1], seeds[:, 0] - CENTRE[0])) % 360
    deelgemeente_of_wijk = [0 if a < 120 or a >= 300 else (1 if a < 210 else 2) for a in angles]
    deelgemeente_of_wijk[0] = 0
    return wijk_of_sector, deelgemeente_of_wijk


def _area_frames(
    sectors: list[BaseGeometry], wijk_of_sector: list[int], deelgemeente_of_wijk: list[int]
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    # Wijken numbered in the order of their first (most central) sector.
    order = list(dict.fromkeys(wijk_of_sector))
    wijk_number = {old: new + 1 for new, old in enumerate(order)}
    sector_rows, wijk_rows, deel_rows = [], [], []
    for old in order:
        number = wijk_number[old]
        letter, deel_name = DEELGEMEENTEN[deelgemeente_of_wijk[old]]
        wijk_code = f"{NIS_CODE}W{number:02d}"
        members = [i for i, w in enumerate(wijk_of_sector) if w == old]
        wijk_name = WIJK_NAMES[number - 1]
        for position, index in enumerate(members):
            suffix = "-" if position == 0 else "123456789ABCDEFGHJKLMNPQRSTUVWXYZ"[position - 1]
            sector_rows.append(
                {
                    "cd_sector": f"{NIS_CODE}{letter}{number:02d}{suffix}",
                    "name_nl": f"{deel_name.upper()}-{wijk_name.upper()}"
                    + ("" if position == 0 else f" {position + 1}"),
                    "nis_code": NIS_CODE,
                    "wijk_code": wijk_code,
                    "geometry": _polygons(sectors[index]),
                }
            )
        wijk_rows.append(
            {
                "wijk_code": wijk_code,
                "name_nl": wijk_name,
                "nis_code": NIS_CODE,
                "deelgemeente_code": f"{NIS_CODE}{letter}",
                "geometry": _as_multi(shapely.union_all([sectors[i] for i in members])),
            }
        )
    wijken = gpd.GeoDataFrame(wijk_rows, geometry="geometry", crs=31370)
    for letter, name in DEELGEMEENTEN:
        code = f"{NIS_CODE}{letter}"
        parts = wijken.geometry[wijken["deelgemeente_code"] == code]
        if len(parts):
            deel_rows.append(
                {
                    "deelgemeente_code": code,
                    "name_nl": name,
                    "nis_code": NIS_CODE,
                    "geometry": _as_multi(shapely.union_all(parts.values)),
                }
            )
    sectors_frame = gpd.GeoDataFrame(sector_rows, geometry="geometry", crs=31370)
    deelgemeenten = gpd.GeoDataFrame(deel_rows, geometry="geometry", crs=31370)
    return sectors_frame, wijken, deelgemeenten


# streets and addresses --------------------------------------------------------------------------


def _streets(rng: np.random.Generator, boundary: Polygon) -> gpd.GeoDataFrame:
    inner = boundary.buffer(-40.0)
    lines: list[tuple[str, LineString]] = []
    cx, cy = CENTRE
    # Main roads radiate from the church square; the shopping street is the short one.
    start_angle = rng.uniform(0, 2 * math.pi)
    for i, name in enumerate(MAIN_ROADS):
        heading = start_angle + i * 2 * math.pi / len(MAIN_ROADS) + rng.normal(0, 0.15)
        length = 900.0 if name == "Stationsstraat" else RADIUS_M * 1.4
        start = (cx + 60 * math.cos(heading), cy + 60 * math.sin(heading))
        lines.append((name, _walk(rng, start, heading, length, curvature=0.025)))
    # The ring road follows two thirds of a circle around the centre.
    arc = np.linspace(0.0, 4 * math.pi / 3, 60) + rng.uniform(0, 2 * math.pi)
    ring = LineString(
        np.column_stack([cx + 750 * np.cos(arc), cy + 750 * np.sin(arc)])
        + rng.normal(0, 4, (arc.size, 2))
    )
    lines.append((RING_ROAD, ring))
    lines = [(name, _clip_line(line, inner)) for name, line in lines]
    lines.extend(_business_park(rng, dict(lines)["Mechelsesteenweg"], inner))
    # Local streets branch off existing streets, some curved; a candidate that runs along or
    # through existing streets is drawn again, so streets spread over the whole municipality.
    for name in LOCAL_STREETS:
        if name in BUSINESS_STREETS:
            continue
        for _attempt in range(12):
            lengths = np.array([line.length for _, line in lines])
            parent = lines[int(rng.choice(len(lines), p=lengths / lengths.sum()))][1]
            along = rng.uniform(0.05, 0.95) * parent.length
            heading = _tangent(parent, along) + rng.choice([-1, 1]) * math.pi / 2
            point = parent.interpolate(along)
            line = _walk(
                rng,
                (point.x, point.y),
                heading + rng.normal(0, 0.2),
                rng.uniform(350.0, 1_000.0),
                curvature=0.06 if rng.random() < 0.4 else 0.0,
            )
            clipped = _clip_line(line, inner)
            # Metres of the candidate lying within 45 m of an existing street.
            samples = shapely.points(
                np.column_stack(_resample(clipped, np.arange(0.0, clipped.length, 10.0)))
            )
            taken = shapely.multilinestrings([g for _, g in lines])
            near = 10.0 * int(shapely.dwithin(taken, samples, 45.0).sum())
            if clipped.length > 150.0 and near < 100.0:
                lines.append((name, clipped))
                break
    return gpd.GeoDataFrame(
        {"name": [n for n, _ in lines]}, geometry=[g for _, g in lines], crs=31370
    )


def _business_park(
    rng: np.random.Generator, road: LineString, area: Polygon
) -> list[tuple[str, LineString]]:
    # A small grid off a main road: one access road with three side streets.
    along = 0.7 * road.length
    access_heading = _tangent(road, along) + math.pi / 2
    start = road.interpolate(along)
    access = _walk(rng, (start.x, start.y), access_heading, 450.0, curvature=0.0)
    streets = [(BUSINESS_STREETS[0], access)]
    for i, name in enumerate(BUSINESS_STREETS[1:], start=1):
        branch = access.interpolate(i * 120.0)
        side = 1 if i % 2 else -1
        streets.append(
            (
                name,
                _walk(
                    rng,
                    (branch.x, branch.y),
                    access_heading + side * math.pi / 2,
                    250.0,
                    curvature=0.0,
                ),
            )
        )
    return [(name, _clip_line(line, area)) for name, line in streets]


def _tangent(line: LineString, along: float) -> float:
    ahead = line.interpolate(min(line.length, along + 5.0))
    behind = line.interpolate(max(0.0, along - 5.0))
    return math.atan2(ahead.y - behind.y, ahead.x - behind.x)


def _walk(
    rng: np.random.Generator,
    start: tuple[float, float],
    heading: float,
    length: float,
    *,
    curvature: float,
) -> LineString:
    step = 25.0
    count = max(2, int(length / step))
    headings = (
        heading + np.cumsum(rng.normal(0, curvature, count))
        if curvature
        else np.full(count, heading)
    )
    xs = start[0] + np.concatenate([[0.0], np.cumsum(step * np.cos(headings))])
    ys = start[1] + np.concatenate([[0.0], np.cumsum(step * np.sin(headings))])
    return LineString(np.column_stack([xs, ys]))


def _resample(line: LineString, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Points at the given distances along a line, in one numpy pass (shapely's per-point
    # interpolation walks the line again for every point).
    coords = shapely.get_coordinates(line)
    if len(coords) < 2:
        return np.empty(0), np.empty(0)
    chainage = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(coords, axis=0).T))])
    xs = np.interp(distances, chainage, coords[:, 0])
    return xs, np.interp(distances, chainage, coords[:, 1])


def _clip_line(line: LineString, area: Polygon) -> LineString:
    clipped = line.intersection(area)
    parts = [g for g in getattr(clipped, "geoms", [clipped]) if isinstance(g, LineString)]
    return max(parts, key=lambda g: g.length) if parts else LineString()


def _addresses(
    rng: np.random.Generator, streets: gpd.GeoDataFrame, boundary: Polygon
) -> pd.DataFrame:
    columns: dict[str, list] = {"street": [], "housenumber": [], "box": [], "x": [], "y": []}
    for name, line in zip(streets["name"], streets.geometry, strict=True):
        for side, first_number in ((1.0, 1), (-1.0, 2)):
            for number, x, y, centrality in _plots(rng, line, side, first_number):
                # Apartment buildings (boxes) are common in the centre, rare outside.
                boxes: list[str | None] = [None]
                if name not in BUSINESS_STREETS and rng.random() < 0.05 + 0.45 * centrality:
                    count = int(rng.integers(3, 13))
                    boxes = (
                        [f"{floor}.{unit}" for floor in range(count // 3) for unit in (1, 2, 3)]
                        if rng.random() < 0.3
                        else [str(b) for b in range(1, count + 1)]
                    )
                numbers = [str(number)]
                if rng.random() < 0.04:  # a plot split later gets a letter: 12A next to 12
                    numbers.append(f"{number}A")
                for label in numbers:
                    for box in boxes:
                        columns["street"].append(name)
                        columns["housenumber"].append(label)
                        columns["box"].append(box)
                        columns["x"].append(x)
                        columns["y"].append(y)
    frame = pd.DataFrame(columns)
    frame = frame[shapely.contains_xy(boundary, frame["x"].to_numpy(), frame["y"].to_numpy())]
    frame = frame.reset_index(drop=True)
    unlocated = rng.choice(len(frame), size=UNLOCATED_ADDRESSES, replace=False)
    frame.loc[unlocated, ["x", "y"]] = np.nan
    frame.insert(3, "postcode", POSTCODE)
    frame.insert(4, "municipality", MUNICIPALITY)
    frame.insert(5, "nis_code", NIS_CODE)
    return frame


def _plots(
    rng: np.random.Generator, line: LineString, side: float, first_number: int
) -> Iterator[tuple[int, float, float, float]]:
    # Frontage per plot grows with the distance from the centre (terraced houses to villas).
    xs, ys = _resample(line, np.arange(0.0, line.length + 1.0))
    centrality = np.clip(1.0 - np.hypot(xs - CENTRE[0], ys - CENTRE[1]) / (0.6 * RADIUS_M), 0, 1)
    count = int(line.length / 5.0) + 1
    frontage = rng.uniform(4.5, 7.0, count)
    villa = rng.uniform(0.2, 1.0, count)
    offsets = 11.0 + rng.uniform(-2.0, 4.0, count)
    along, number, last = 6, first_number, len(xs) - 3
    for plot in range(count):
        if along >= last - 6:
            break
        dx, dy = xs[along + 2] - xs[along - 2], ys[along + 2] - ys[along - 2]
        norm = math.hypot(dx, dy) or 1.0
        x = xs[along] - side * dy / norm * offsets[plot]
        y = ys[along] + side * dx / norm * offsets[plot]
        yield number, round(float(x), 2), round(float(y), 2), float(centrality[along])
        number += 2
        along += int(round(frontage[plot] + 5.0 * (1.0 - centrality[along]) * villa[plot]))


def _addresses_csv(addresses: pd.DataFrame) -> pd.DataFrame:
    lon, lat = _TO_WGS84.transform(addresses["x"].to_numpy(), addresses["y"].to_numpy())
    out = addresses[["street", "housenumber", "box", "postcode", "municipality", "nis_code"]].copy()
    out["lat"] = [f"{v:.7f}" if np.isfinite(v) else "" for v in lat]
    out["lon"] = [f"{v:.7f}" if np.isfinite(v) else "" for v in lon]
    return out[list(ADDRESS_COLUMNS)]


# networks ---------------------------------------------------------------------------------------


def _networks(
    rng: np.random.Generator,
    boundary: Polygon,
    streets: gpd.GeoDataFrame,
    sectors: gpd.GeoDataFrame,
    wijken: gpd.GeoDataFrame,
) -> gpd.GeoDataFrame:
    line_of = dict(zip(streets["name"], streets.geometry, strict=True))
    # BIN-Z 1: the shopping street and the shops on both sides.
    shopping = line_of["Stationsstraat"].buffer(70.0, cap_style="flat").intersection(boundary)
    # BIN-Z 2: the business area around the business streets that exist.
    business_lines = [line_of[n] for n in BUSINESS_STREETS if n in line_of]
    business = shapely.union_all([g.buffer(90.0) for g in business_lines]).intersection(boundary)
    rows = [
        _network_row("BINZ-99001-01", "BIN-Z Winkelhart Stationsstraat", "BIN-Z", shopping),
        _network_row("BINZ-99001-02", "BIN-Z Bedrijvenzone Demodorp", "BIN-Z", business),
    ]
    # Wijken left without any network: two that no BIN-Z touches.
    business_areas = shapely.union_all([shopping, business])
    free = [
        i
        for i, geom in enumerate(wijken.geometry)
        if geom.intersection(business_areas).area < 1.0 and i != 0
    ]
    uncovered = sorted(rng.choice(free, size=min(UNCOVERED_WIJKEN, len(free)), replace=False))
    uncovered_codes = set(wijken["wijk_code"].iloc[uncovered])
    excluded = shapely.union_all(wijken.geometry.iloc[uncovered].values).buffer(0.5)

    # BINs: groups of 1-3 neighbouring sectors in each other wijk, some grown a little so that
    # they overlap their neighbours, plus two along a street.
    bins: list[tuple[str, BaseGeometry]] = []
    for wijk_code, wijk_name in zip(wijken["wijk_code"], wijken["name_nl"], strict=True):
        if wijk_code in uncovered_codes:
            continue
        members = sectors[sectors["wijk_code"] == wijk_code]
        centre = shapely.union_all(members.geometry.values).centroid
        angles = [
            math.atan2(g.centroid.y - centre.y, g.centroid.x - centre.x) for g in members.geometry
        ]
        ordered = members.geometry.values[np.argsort(angles)]
        groups = _chunks(list(ordered), rng)
        for part, group in zip(("Noord", "Zuid", "Oost", "West"), groups[:2], strict=False):
            area = shapely.union_all(group)
            if rng.random() < 0.3:
                area = area.buffer(35.0)
            bins.append(
                (f"BIN {wijk_name} {part}" if len(groups) > 1 else f"BIN {wijk_name}", area)
            )
    for street in ("Kerkstraat", "Molenweg"):
        line = line_of[street]
        segment = substring(line, 0.15 * line.length, 0.55 * line.length)
        bins.append((f"BIN {street}", segment.buffer(60.0)))

    for number, (name, area) in enumerate(bins, start=1):
        area = area.intersection(boundary).difference(excluded)
        status = BIN_STATUSES.get(number, NetworkStatus.active)
        rows.append(_network_row(f"BIN-99001-{number:02d}", name, "BIN", area, status))
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=31370)


def _chunks(items: list, rng: np.random.Generator) -> list[list]:
    groups, start = [], 0
    while start < len(items):
        size = int(rng.integers(1, 4))
        groups.append(items[start : start + size])
        start += size
    return groups


def _network_row(
    code: str,
    name: str,
    kind: str,
    area: BaseGeometry,
    status: NetworkStatus = NetworkStatus.active,
) -> dict[str, object]:
    return {
        "code": code,
        "name": name,
        "kind": NetworkKind(kind).value,
        "status": status.value,
        "nis_code": NIS_CODE,
        "police_zone_code": POLICE_ZONE_CODE,
        "geometry": _as_multi(shapely.set_precision(area, 0.01)),
    }


# helpers ----------------------------------------------------------------------------------------


def _distance_to_centre(geom: BaseGeometry) -> float:
    point = geom if isinstance(geom, Point) else geom.centroid
    return math.hypot(point.x - CENTRE[0], point.y - CENTRE[1])


def _polygons(geom: BaseGeometry) -> MultiPolygon:
    return MultiPolygon([g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon)])


def _as_multi(geom: BaseGeometry) -> MultiPolygon:
    # Tiny slivers from clipping are dropped; bigger parts are kept as they are.
    parts = [g for g in getattr(geom, "geoms", [geom]) if isinstance(g, Polygon) and g.area > 50.0]
    return MultiPolygon(parts)


def _write_geojson(frame: gpd.GeoDataFrame, path: Path, *, rfc7946: bool) -> None:
    path.unlink(missing_ok=True)
    options = {"RFC7946": "YES"} if rfc7946 else {"COORDINATE_PRECISION": 2}
    frame.to_file(path, driver="GeoJSON", engine="pyogrio", layer_options=options)


@contextlib.contextmanager
def _fixed_gpkg_date() -> Iterator[None]:
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FIXED_GPKG_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
