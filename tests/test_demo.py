"""The demo municipality: deterministic, realistic in size and shape, imported by the importers."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pandas as pd
import pytest
import shapely
from sqlalchemy import Engine

from bingeo.demo import DemoData, generate_demo, write_demo_files
from bingeo.services.demo import run_demo
from bingeo.services.status import database_status
from bingeo.settings import Settings


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo()


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_generated_files_are_identical_across_runs(tmp_path: Path) -> None:
    first = write_demo_files(generate_demo(), tmp_path / "one")
    write_demo_files(generate_demo(), tmp_path / "two")
    hashes = _hashes(tmp_path / "one")
    assert hashes == _hashes(tmp_path / "two")
    assert set(hashes) == {p.path.name for p in first}
    assert {f.kind for f in first} >= {"sector", "wijk", "deelgemeente", "addresses", "networks"}


def test_another_seed_gives_another_municipality() -> None:
    assert (
        not generate_demo(1)
        .networks.geometry.iloc[0]
        .equals(generate_demo(2).networks.geometry.iloc[0])
    )


def test_addresses_are_realistic(demo: DemoData) -> None:
    addresses = demo.addresses
    assert 20_000 <= len(addresses) <= 40_000
    unlocated = addresses["x"].isna()
    assert 100 <= unlocated.sum() <= 1_000
    assert not addresses.duplicated(["street", "housenumber", "box"]).any()
    assert addresses["street"].nunique() >= 30
    assert addresses["postcode"].nunique() == 1
    assert addresses["box"].notna().any()
    assert addresses["housenumber"].str.fullmatch(r"\d+[A-Z]").any()
    numbers = addresses["housenumber"].str.extract(r"^(\d+)")[0].astype(int)
    located = addresses[~unlocated]
    inside = shapely.contains_xy(
        demo.municipality.geometry.iloc[0], located["x"].to_numpy(), located["y"].to_numpy()
    )
    assert inside.all()
    # Odd numbers on one side of a street, even on the other: the two sides do not mix.
    kerkstraat = addresses[(addresses["street"] == "Kerkstraat") & ~unlocated].assign(n=numbers)
    line = demo.streets.set_index("name").geometry["Kerkstraat"]
    side = [_side_of(line, x, y) for x, y in zip(kerkstraat["x"], kerkstraat["y"], strict=True)]
    parity = (kerkstraat["n"] % 2).to_numpy()
    assert len(set(zip(parity, side, strict=True))) == 2


def _side_of(line: shapely.LineString, x: float, y: float) -> int:
    along = line.project(shapely.Point(x, y))
    a = line.interpolate(max(0.0, along - 1.0))
    b = line.interpolate(min(line.length, along + 1.0))
    return int((b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x) > 0)


def test_sectors_tile_the_municipality(demo: DemoData) -> None:
    municipality = demo.municipality.geometry.iloc[0]
    sectors = demo.sectors
    assert 40 <= len(sectors) <= 60
    assert sectors.geometry.is_valid.all()
    union = shapely.union_all(sectors.geometry.values)
    assert abs(union.area - municipality.area) / municipality.area < 0.001
    assert municipality.symmetric_difference(union).area / municipality.area < 0.001
    assert abs(sectors.area.sum() - union.area) / union.area < 0.001  # no overlaps
    assert sectors["cd_sector"].is_unique
    assert sectors["cd_sector"].str.fullmatch(r"99001[A-C]\d\d[-1-9A-Z]").all()


def test_wijken_and_deelgemeenten_are_unions_of_smaller_areas(demo: DemoData) -> None:
    assert 6 <= len(demo.wijken) <= 10
    assert 2 <= len(demo.deelgemeenten) <= 3
    for code, wijk in zip(demo.wijken["wijk_code"], demo.wijken.geometry, strict=True):
        members = demo.sectors[demo.sectors["wijk_code"] == code]
        assert len(members) >= 1
        assert shapely.union_all(members.geometry.values).symmetric_difference(wijk).area < 1.0
    for code, deel in zip(
        demo.deelgemeenten["deelgemeente_code"], demo.deelgemeenten.geometry, strict=True
    ):
        members = demo.wijken[demo.wijken["deelgemeente_code"] == code]
        assert shapely.union_all(members.geometry.values).symmetric_difference(deel).area < 1.0
        # Sector codes carry the letter of their deelgemeente.
        sectors = demo.sectors[demo.sectors["wijk_code"].isin(members["wijk_code"])]
        assert sectors["cd_sector"].str.startswith(code).all()


def test_networks_overlap_and_leave_wijken_uncovered(demo: DemoData) -> None:
    networks = demo.networks
    counts = networks["kind"].value_counts()
    assert counts["BIN"] >= 12
    assert counts["BIN-Z"] == 2
    assert networks.geometry.is_valid.all()
    assert not networks.geometry.is_empty.any()
    assert networks["code"].is_unique
    statuses = networks["status"].value_counts()
    assert statuses.idxmax() == "active"
    assert {"preparation", "dormant"} <= set(statuses.index)
    overlapping = [
        (a.code, b.code)
        for a, b in itertools.combinations(networks.itertuples(), 2)
        if a.geometry.intersection(b.geometry).area > 100.0
    ]
    assert overlapping
    everything = shapely.union_all(networks.geometry.values)
    uncovered = [
        code
        for code, wijk in zip(demo.wijken["wijk_code"], demo.wijken.geometry, strict=True)
        if wijk.intersection(everything).area < 1.0
    ]
    assert uncovered
    # Uncovered wijken hold addresses: they are neighbourhoods, not empty fields.
    located = demo.addresses.dropna(subset=["x"])
    holes = demo.wijken[demo.wijken["wijk_code"].isin(uncovered)].union_all()
    assert shapely.contains_xy(holes, located["x"].to_numpy(), located["y"].to_numpy()).sum() > 500


def test_run_demo_imports_everything_once(db: Engine, settings: Settings, tmp_path: Path) -> None:
    messages: list[str] = []
    result = run_demo(db, settings, out_dir=tmp_path / "demo", progress=messages.append)
    demo = generate_demo()
    status = database_status(db)
    assert status["reference_areas"] == {
        "municipality": 1,
        "police_zone": 1,
        "deelgemeente": len(demo.deelgemeenten),
        "wijk": len(demo.wijken),
        "sector": len(demo.sectors),
    }
    unlocated = int(demo.addresses["x"].isna().sum())
    addresses = status["addresses"]
    assert addresses["located"] == len(demo.addresses) - unlocated
    # Those without a position lie in streets with located ones: they get an approximate one.
    assert (addresses["approximate"], addresses["unlocated"]) == (unlocated, 0)
    kinds = {kind: sum(by_status.values()) for kind, by_status in status["networks"].items()}
    assert kinds == demo.networks["kind"].value_counts().to_dict()
    assert all(i["rejected"] == 0 and i["duplicates"] == 0 for i in result["imports"])
    assert messages

    again = run_demo(db, settings, out_dir=tmp_path / "demo")
    assert database_status(db) == status
    assert all(i["stored"] == 0 and i["updated"] == 0 for i in again["imports"])

    page = Path(result["map"]).read_text(encoding="utf-8")
    assert Path(result["map"]).parent == tmp_path / "demo"
    for name in demo.networks["name"]:
        assert name in page
    assert "bingeo-legend" in page


def test_run_demo_map_without_tiles(db: Engine, settings: Settings, tmp_path: Path) -> None:
    offline = settings.model_copy(update={"tiles": None})
    result = run_demo(db, offline, out_dir=tmp_path)
    page = Path(result["map"]).read_text(encoding="utf-8")
    assert "tileLayer" not in page
    assert "tile.openstreetmap" not in page
    assert "BIN-Z Winkelhart Stationsstraat" in page


def test_address_csv_has_the_importer_columns(tmp_path: Path, demo: DemoData) -> None:
    files = write_demo_files(demo, tmp_path)
    csv_path = next(f.path for f in files if f.kind == "addresses")
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == [
        "street",
        "housenumber",
        "box",
        "postcode",
        "municipality",
        "nis_code",
        "lat",
        "lon",
    ]
    located = frame[frame["lat"] != ""]
    lat, lon = located["lat"].astype(float), located["lon"].astype(float)
    assert lat.between(50.6, 51.5).all() and lon.between(3.0, 5.5).all()
    assert (frame["lat"] == "").sum() == demo.addresses["x"].isna().sum()
