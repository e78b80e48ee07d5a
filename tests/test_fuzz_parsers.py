"""Hostile input to the parsers: a valid result or a ``BinGeoError``, never another exception.

The GeoJSON parser (``geojson_to_storage``) gets JSON-like values and mangled polygons; the CSV
parsers (addresses, street lists, network lists) get arbitrary bytes and CSV text made of their
own column names with hostile cells. Bounded: a few hundred examples each, no deadline.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import CENTRE_X
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon

from bingeo import addresses, streetlists
from bingeo.addresses import read_addresses
from bingeo.errors import BinGeoError
from bingeo.geometry import GeometryLimits, geojson_to_storage
from bingeo.streetlists import read_network_list, read_street_list

BOUNDED = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = GeometryLimits(max_vertices=50, max_area_m2=500e6)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    """A folder for the generated files (hypothesis reruns the test body many times)."""
    with tempfile.TemporaryDirectory(prefix="bingeo-fuzz-") as name:
        yield Path(name)


_counter = itertools.count()


def write(folder: Path, content: bytes | str, suffix: str = ".csv") -> Path:
    """``content`` in a new file of ``folder``."""
    path = folder / f"f{next(_counter)}{suffix}"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(content)
    return path


# GeoJSON --------------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    # mostly near Belgium, so that many inputs get through to the later checks
    st.floats(min_value=CENTRE_X[0] - 0.05, max_value=CENTRE_X[0] + 0.05),
    st.floats(min_value=CENTRE_X[1] - 0.05, max_value=CENTRE_X[1] + 0.05),
)
JSON_LIKE = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(
            st.sampled_from(["type", "coordinates", "geometry", "geometries", "features", "crs"]),
            children,
        )
    ),
    max_leaves=40,
)
TYPES = st.sampled_from(
    [
        "Polygon",
        "MultiPolygon",
        "Point",
        "LineString",
        "GeometryCollection",
        "Feature",
        "FeatureCollection",
        "polygon",
        "",
    ]
)


@st.composite
def mangled_polygons(draw: st.DrawFn) -> object:
    """A polygon near Belgium, then broken: points moved, repeated, removed, rings opened."""
    lon, lat = CENTRE_X
    size = draw(st.floats(min_value=1e-9, max_value=2.0))
    count = draw(st.integers(min_value=0, max_value=12))
    ring = [
        [
            lon + size * math.cos(2 * math.pi * i / max(count, 1)),
            lat + size * math.sin(2 * math.pi * i / max(count, 1)),
        ]
        for i in range(count)
    ]
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        if not ring:
            break
        k = draw(st.integers(min_value=0, max_value=len(ring) - 1))
        action = draw(st.sampled_from(["move", "repeat", "drop", "third", "value"]))
        if action == "move":
            ring[k] = [draw(NUMBERS), draw(NUMBERS)]
        elif action == "repeat":
            ring.insert(k, _copy(ring[k]))
        elif action == "drop":
            ring.pop(k)
        elif action == "third":
            ring[k] = [*_copy(ring[k]), draw(NUMBERS)]
        else:
            ring[k] = draw(JSON_LIKE)
    if ring and draw(st.booleans()):
        ring.append(_copy(ring[0]))  # closed, as GeoJSON wants
    rings = [ring] + draw(st.lists(st.just(ring[::-1]), max_size=2))  # holes equal to the shell
    kind = draw(TYPES)
    coordinates: object = [rings] if kind == "MultiPolygon" else rings
    geometry = {"type": kind, "coordinates": coordinates}
    wrap = draw(st.sampled_from(["bare", "feature", "collection", "crs"]))
    if wrap == "feature":
        return {"type": "Feature", "properties": None, "geometry": geometry}
    if wrap == "collection":
        feature = {"type": "Feature", "geometry": geometry}
        return {"type": "FeatureCollection", "features": [feature] * draw(st.integers(0, 3))}
    if wrap == "crs":
        name = draw(st.sampled_from(["EPSG:31370", "urn:ogc:def:crs:EPSG::3812", "EPSG:9999"]))
        return {**geometry, "crs": {"type": "name", "properties": {"name": name}}}
    return geometry


def _copy(position: object) -> list:
    # A position replaced by an arbitrary JSON value earlier may be anything, None included.
    return list(position) if isinstance(position, list | tuple) else [position]


def check_geometry(data: object) -> None:
    """``geojson_to_storage`` gives a valid MultiPolygon or a BinGeoError."""
    try:
        geometry, warnings = geojson_to_storage(data, limits=LIMITS)
    except BinGeoError as error:
        assert error.detail and isinstance(error.code, str)
        return
    assert isinstance(geometry, MultiPolygon)
    assert geometry.is_valid and not geometry.is_empty and geometry.area > 0
    assert all(isinstance(w, str) for w in warnings)


@BOUNDED
@given(
    st.one_of(JSON_LIKE, st.builds(lambda t, c: {"type": t, "coordinates": c}, TYPES, JSON_LIKE))
)
def test_geojson_parser_on_json_like_values(data: object) -> None:
    check_geometry(data)


@BOUNDED
@given(mangled_polygons())
def test_geojson_parser_on_mangled_polygons(data: object) -> None:
    check_geometry(data)


# CSV ------------------------------------------------------------------------------------------

CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            '"',
            '""',
            "NaN",
            "inf",
            "-1e308",
            "1e400",
            "50.83",
            "4.76",
            "152000.5",
            "0x1F",
            "٣",
            "\x00",
            "\r",
            "a,b",
            "=cmd()",
            "Koning Albertlaan",
            "nr 1 t.e.m. 71",
            "alle straten",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def csv_text(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """CSV text whose header takes some of ``names`` (and junk), with hostile cells."""
    header = st.lists(st.sampled_from(names) | st.text(max_size=6), min_size=0, max_size=9)
    separator = st.sampled_from([",", ";", "\t", "|"])

    @st.composite
    def build(draw: st.DrawFn) -> str:
        columns = draw(header)
        sep = draw(separator)
        rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=len(columns) + 2), max_size=8))
        bom = draw(st.sampled_from(["", "\ufeff"]))
        end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        lines = [sep.join(columns)] + [sep.join(row) for row in rows]
        return bom + end.join(lines)

    return build()


ADDRESS_NAMES = (
    addresses.ID_COLUMNS
    + addresses.STREET_COLUMNS
    + addresses.NUMBER_COLUMNS
    + addresses.BOX_COLUMNS
    + addresses.POSTCODE_COLUMNS
    + addresses.MUNICIPALITY_COLUMNS
    + addresses.NIS_COLUMNS
    + addresses.LAT_COLUMNS
    + addresses.LON_COLUMNS
    + addresses.X_COLUMNS
    + addresses.Y_COLUMNS
)
STREET_LIST_NAMES = (
    streetlists.NETWORK_COLUMNS
    + streetlists.MUNICIPALITY_COLUMNS
    + streetlists.STREET_COLUMNS
    + streetlists.QUALIFIER_COLUMNS
    + streetlists.COVERAGE_COLUMNS
    + ("bin_type", "bin_name", "name", "kind")
)
HOSTILE_BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbf",
            b"street,lat,lon\n",
            b"\xff\xfe s\x00t\x00r\x00e\x00e\x00t\x00",
            b"PK\x03\x04",
            b"street,lat\n" + b"x" * 5000 + b"\n",
        ]
    ),
)


def check_addresses(path: Path) -> None:
    """The address reader yields chunks whose coordinates are numbers, or a BinGeoError."""
    try:
        for chunk in read_addresses(path, chunk_rows=3):
            frame = chunk.frame
            located = frame["x"].notna()
            assert (frame["x"][located].abs() < 1e7).all()
    except BinGeoError as error:
        assert error.detail


@BOUNDED
@given(HOSTILE_BYTES)
def test_address_reader_on_arbitrary_bytes(folder: Path, content: bytes) -> None:
    check_addresses(write(folder, content))


@BOUNDED
@given(csv_text(ADDRESS_NAMES))
def test_address_reader_on_hostile_csv(folder: Path, content: str) -> None:
    check_addresses(write(folder, content))


def check_street_lists(path: Path) -> None:
    """Both street-list readers give their result or a BinGeoError."""
    for reader in (read_street_list, read_network_list):
        try:
            reader(path)
        except BinGeoError as error:
            assert error.detail


@BOUNDED
@given(HOSTILE_BYTES)
def test_street_list_readers_on_arbitrary_bytes(folder: Path, content: bytes) -> None:
    check_street_lists(write(folder, content))


@BOUNDED
@given(csv_text(STREET_LIST_NAMES))
def test_street_list_readers_on_hostile_csv(folder: Path, content: str) -> None:
    check_street_lists(write(folder, content))
