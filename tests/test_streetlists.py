"""Network areas from published street lists, checked on the real Bierbeek lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from db_helpers import empty_tables

from bingeo.services.imports import import_addresses, import_areas
from bingeo.services.streetlists import derive_from_street_list, store_derived
from bingeo.streetlists import AreaRule, NumberRule, parse_qualifier, resolve_street

CURRENT_BIERBEEK = (
    "BIERBEEK-MARTINUSBERG",
    "BIERBEEK-PIMBERG",
    "BIERBEEK-KRIJKELBERG",
    "BIERBEEK-OPVELP",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("van huisnummer 1 t.e.m. 71", NumberRule(1, 71)),
        ("1-71", NumberRule(1, 71)),
        ("nr 1 t.e.m. 71", NumberRule(1, 71)),
        ("pare nummers", NumberRule(parity=0)),
        ("onpare nummers 3 tot 41", NumberRule(3, 41, 1)),
        ("vanaf 20", NumberRule(low=20)),
        ("omvat alle straten van de deelgemeente Opvelp", AreaRule("deelgemeente", "opvelp")),
        ("alle straten van de wijk Sombeke", AreaRule("wijk", "sombeke")),
    ],
)
def test_qualifiers_bingeo_can_read(text, expected):
    assert parse_qualifier(text) == expected


@pytest.mark.parametrize(
    "text", ["bovenkant", "tussen spoorwegbrug en Krijkelberg", "tot aan de gemeentegrens"]
)
def test_qualifiers_it_cannot_read_are_refused(text):
    with pytest.raises(ValueError, match="not understood|partly understood"):
        parse_qualifier(text)


def test_number_rule_keeps_range_and_side():
    numbers = np.array([1, 2, 3, 70, 71, 72, np.nan])
    assert NumberRule(1, 71, 1).keeps(numbers).tolist() == [
        True,
        False,
        True,
        False,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("published", "register"),
    [
        ("Uitbereidingslaan", "Uitbreidingslaan"),
        ("Langelostraat", "Lange Lostraat"),
        ("Frans de Peuterstraat", "Frans De Peuterstraat"),
        ("Quinten Matsijslaan", "Quinten Matsyslaan"),
    ],
)
def test_published_spellings_resolve(published, register):
    streets = [register, "Kerkstraat", "Stationsstraat", "Molenweg", "Lange Nieuwstraat"]
    street, confidence, _ = resolve_street(published, streets)
    assert street == register
    assert 0.85 <= confidence < 1.0


def test_unknown_street_is_not_guessed():
    street, _, candidates = resolve_street("Koolkaai", ["Kloosterlaan", "Kerkplein", "Zandstraat"])
    assert street is None
    assert candidates


@pytest.fixture(scope="module")
def bierbeek(engine, real_data):
    """The Bierbeek context and addresses, loaded once for this module."""
    empty_tables(engine)
    folder = real_data / "bierbeek_bin"
    for layer, level in [
        ("municipalities", "municipality"),
        ("deelgemeenten", "deelgemeente"),
        ("wijken", "wijk"),
    ]:
        import_areas(engine, folder / "bin_municipalities_context.gpkg", level, layer=layer)
    summary = import_addresses(
        engine, folder / "addresses_crab_bin_municipalities.csv", skip_invalid=True
    )
    # Five records carry a placeholder position in France; they are refused, not stored.
    assert len(summary.rejected) == 5
    result = derive_from_street_list(
        engine,
        folder / "bin_streets_published.csv",
        networks_csv=folder / "bin_networks_published.csv",
    )
    return engine, folder, result


def _located_bierbeek(folder) -> pd.DataFrame:
    frame = pd.read_csv(folder / "addresses_crab_bin_municipalities.csv", dtype=str)
    frame = frame[(frame["nis_code"] == "24011") & frame["lat"].notna()].copy()
    frame[["lat", "lon"]] = frame[["lat", "lon"]].astype(float)
    frame = frame[frame["lat"] > 50]  # the placeholder positions in France
    points = shapely.points(frame["lon"], frame["lat"])
    from pyproj import Transformer

    to_lambert = Transformer.from_crs(4326, 31370, always_xy=True)
    x, y = to_lambert.transform(frame["lon"].to_numpy(), frame["lat"].to_numpy())
    frame["x"], frame["y"] = x, y
    frame["point"] = points
    return frame


def _expected_mask(frame: pd.DataFrame, folder, network: str, opvelp) -> np.ndarray:
    """The addresses a network should hold, read from the published list by hand-made rules."""
    if network == "BIERBEEK-OPVELP":
        shapely.prepare(opvelp)
        return shapely.intersects_xy(opvelp, frame["x"].to_numpy(), frame["y"].to_numpy())
    lists = pd.read_csv(folder / "bin_streets_published.csv", dtype=str)
    published = lists[lists["bin_id"] == network]["street_as_published"].tolist()
    # The register's spelling of the published names that differ (see SOURCES.md).
    register = {"Langelostraat": "Lange Lostraat", "Uitbereidingslaan": "Uitbreidingslaan"}
    streets = {register.get(name, name) for name in published}
    return frame["street"].isin(streets).to_numpy()


def test_bierbeek_areas_hold_exactly_their_addresses(bierbeek):
    engine, folder, result = bierbeek
    import geopandas as gpd

    frame = _located_bierbeek(folder)
    opvelp = gpd.read_file(folder / "bin_municipalities_context.gpkg", layer="deelgemeenten")
    opvelp = opvelp[opvelp["deelgemeente_code"] == "24011D"].geometry.iloc[0]
    areas = {a.network: a for a in result.areas}
    xy = frame[["x", "y"]].to_numpy()
    # Addresses at the very position of another address cannot be separated from it.
    shared_position = frame.duplicated(subset=["x", "y"], keep=False).to_numpy()
    for network in CURRENT_BIERBEEK:
        expected = _expected_mask(frame, folder, network, opvelp)
        assert expected.sum() > 100, network
        area = areas[network].area
        shapely.prepare(area)
        inside = shapely.intersects_xy(area, xy[:, 0], xy[:, 1])
        assert (inside[expected]).all(), f"{network}: listed addresses left out"
        strays = inside & ~expected & ~shared_position
        assert not strays.any(), f"{network}: {strays.sum()} other addresses inside"


def test_current_bierbeek_areas_do_not_overlap(bierbeek):
    _, _, result = bierbeek
    areas = {a.network: a.area for a in result.areas}
    for i, first in enumerate(CURRENT_BIERBEEK):
        for second in CURRENT_BIERBEEK[i + 1 :]:
            assert areas[first].intersection(areas[second]).area < 1.0, (first, second)


def test_doubts_are_reported_never_silent(bierbeek):
    _, _, result = bierbeek
    findings = {(f.network, f.kind, f.message.split(":")[0]) for f in result.findings}
    kinds = {(f.network, f.kind) for f in result.findings}
    assert ("BIERBEEK-MARTINUSBERG", "unread_qualifier") in kinds  # "bovenkant"
    assert ("BIERBEEK-KRIJKELBERG", "unread_qualifier") in kinds  # "tussen spoorwegbrug ..."
    assert ("KAPELLEN-CENTRUM", "unresolved_street") in kinds  # Koolkaai is not in CRAB 2014
    assert ("KAPELLEN-BOMENWIJK", "unresolved_street") in kinds  # Marktplein neither
    spelled = [f for f in result.findings if f.kind in ("street_spelling", "fuzzy_street")]
    assert {f.message.split("'")[1] for f in spelled} >= {
        "Uitbereidingslaan",
        "Langelostraat",
        "Frans de Peuterstraat",
    }
    assert findings  # every network without a usable list says so
    empty = {f.network for f in result.findings if f.kind == "empty"}
    assert "GROBBENDONK-DE-KROON" in empty


def test_stored_networks_upsert(bierbeek):
    engine, _, result = bierbeek
    first = store_derived(engine, result)
    assert first.stored == sum(1 for a in result.areas if a.area is not None)
    again = store_derived(engine, result)
    assert (again.stored, again.updated) == (0, 0)
