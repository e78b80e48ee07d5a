"""The real Bierbeek sample in data/: documented, reproducible, loadable on its own."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from geoalchemy2.shape import from_shape
from pyproj import Transformer
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from bingeo import cli
from bingeo.db import maps as map_repo
from bingeo.db.cluster import Cluster
from bingeo.db.models import Address, AreaLevel
from bingeo.errors import DatabaseUnavailable, InvalidInput, NotFound
from bingeo.services.demo import (
    REAL_ADDRESSES,
    REAL_CONTEXT,
    REAL_CURRENT_NETWORKS,
    REAL_NETWORKS,
    REAL_STREETS,
    SAMPLE_DIR,
    real_demo_settings,
    run_real_demo,
)
from bingeo.services.status import database_status
from bingeo.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FILES = (REAL_ADDRESSES, REAL_CONTEXT, REAL_NETWORKS, REAL_STREETS)
POLICE_ZONE = "PZ Bierbeek - Boutersem - Holsbeek - Lubbeek"


def test_sample_is_small_and_every_file_documented() -> None:
    assert SAMPLE_DIR == ROOT / "data"
    readme = " ".join((SAMPLE_DIR / "README.md").read_text(encoding="utf-8").split())
    total = 0
    for name in SAMPLE_FILES:
        assert (SAMPLE_DIR / name).is_file(), name
        assert f"## {name}" in readme or f"and {name}" in readme, name
        total += (SAMPLE_DIR / name).stat().st_size
    assert total < 1_000_000
    for licence in (
        "Free Open Data License Flanders v1.0",
        "Modellicentie Gratis Hergebruik Vlaanderen v1.0",
        "Wijken voor omgevingsanalyse. © gemeentebesturen, verzameld door Data & Analyse van de "
        "Vlaamse provincies",
        "credit Statbel",
        "https://bierbeek.be/buurtinformatienetwerken",
    ):
        assert licence in readme, licence


def test_cut_script_reproduces_the_sample(real_data: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "cut-real-sample.py"),
            "--source",
            str(real_data),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in SAMPLE_FILES:
        assert _sha256(tmp_path / name) == _sha256(SAMPLE_DIR / name), name


def test_sample_alone_loads_through_the_importers(
    db: Engine, settings: Settings, tmp_path: Path
) -> None:
    # Only the sample's own files, copied elsewhere: nothing else is needed.
    sample = tmp_path / "sample"
    sample.mkdir()
    for name in SAMPLE_FILES:
        shutil.copy(SAMPLE_DIR / name, sample / name)
    offline = settings.model_copy(update={"tiles": None, "real_data_dir": tmp_path / "absent"})
    messages: list[str] = []
    result = run_real_demo(
        db, offline, sample_dir=sample, out_dir=tmp_path / "out", progress=messages.append
    )

    csv = pd.read_csv(sample / REAL_ADDRESSES, dtype=str, keep_default_na=False)
    status = database_status(db)
    assert status["reference_areas"] == {
        "municipality": 1,
        "deelgemeente": 4,
        "wijk": 11,
        "police_zone": 1,
    }
    # Records without a position are placed approximately where their street allows.
    assert status["addresses"]["located"] == int((csv["lat"] != "").sum())
    assert status["addresses"]["approximate"] + status["addresses"]["unlocated"] == int(
        (csv["lat"] == "").sum()
    )
    assert status["addresses"]["approximate"] > 0
    assert sum(status["addresses"].values()) == len(csv)
    assert status["networks"] == {"BIN": {"active": 4}}
    assert all(i["rejected"] == 0 and i["duplicates"] == 0 for i in result["imports"])
    with db.connect() as connection:
        zones = map_repo.areas_frame(connection, AreaLevel.police_zone)
        municipality = map_repo.areas_frame(connection, AreaLevel.municipality)
        networks = map_repo.networks_frame(connection)
    assert zones[["code", "name_nl"]].values.tolist() == [["ipz48", POLICE_ZONE]]
    assert municipality[["code", "name_nl"]].values.tolist() == [["24011", "Bierbeek"]]
    assert sorted(networks["code"]) == sorted(REAL_CURRENT_NETWORKS)
    assert set(networks["nis_code"]) == {"24011"}

    derived = {n["code"]: n["addresses"] for n in result["derived"]["networks"]}
    assert set(derived) == set(REAL_CURRENT_NETWORKS)
    assert all(count > 100 for count in derived.values()), derived
    # Opvelp is "all streets of the deelgemeente": count its addresses independently, from the
    # files themselves.
    opvelp = gpd.read_file(sample / REAL_CONTEXT, layer="deelgemeenten")
    opvelp = opvelp[opvelp["deelgemeente_code"] == "24011D"].geometry.iloc[0]
    located = csv[csv["lat"] != ""]
    x, y = Transformer.from_crs(4326, 31370, always_xy=True).transform(
        located["lon"].astype(float).to_numpy(), located["lat"].astype(float).to_numpy()
    )
    # The file's located addresses in Opvelp, counted here, and the approximately placed ones,
    # counted by PostGIS.
    table = Address.__table__
    with db.connect() as connection:
        approximate = connection.execute(
            select(func.count()).where(
                table.c.position_method.is_not(None),
                func.ST_Intersects(from_shape(opvelp, srid=31370), table.c.geom),
            )
        ).scalar_one()
    located_in = int(shapely.intersects_xy(opvelp, x, y).sum())
    assert derived["BIERBEEK-OPVELP"] == located_in + approximate
    kinds = {(f["network"], f["kind"]) for f in result["derived"]["findings"]}
    assert ("BIERBEEK-MARTINUSBERG", "unread_qualifier") in kinds  # "bovenkant"
    assert ("BIERBEEK-MARTINUSBERG", "street_spelling") in kinds  # "Langelostraat"

    page = Path(result["map"]).read_text(encoding="utf-8")
    assert Path(result["map"]).parent == tmp_path / "out"
    for name in ("BIN Martinusberg", "BIN Pimberg", "BIN Krijkelberg", "BIN Opvelp"):
        assert name in page
    assert messages

    again = run_real_demo(db, offline, sample_dir=sample, out_dir=tmp_path / "out")
    assert all(i["stored"] == 0 and i["updated"] == 0 for i in again["imports"])
    assert (again["derived"]["stored"], again["derived"]["updated"]) == (0, 0)
    assert database_status(db) == status


def test_missing_sample_file_is_named(db: Engine, settings: Settings, tmp_path: Path) -> None:
    shutil.copy(SAMPLE_DIR / REAL_CONTEXT, tmp_path / REAL_CONTEXT)
    with pytest.raises(NotFound, match=REAL_ADDRESSES):
        run_real_demo(db, settings, sample_dir=tmp_path, out_dir=tmp_path / "out")
    assert database_status(db)["reference_areas"] == {}


def test_demo_real_command_uses_its_own_database(
    db: Engine, settings: Settings, tmp_path: Path
) -> None:
    # The configured database is another one; --database names this run's test database.
    env = {"BINGEO_DATA_DIR": str(settings.data_dir), "BINGEO_TILES": ""}
    if settings.database_url:
        url = make_url(settings.database_url)
        target = url.database
        env["BINGEO_DATABASE_URL"] = url.set(database=f"{target}_configured").render_as_string(
            hide_password=False
        )
    else:
        target = settings.database_name
        env["BINGEO_DATABASE_NAME"] = f"{target}_configured"
    runner = CliRunner()
    result = runner.invoke(
        cli.app,
        ["demo", "--real", "--database", target, "--out", str(tmp_path)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "addresses     read  3,968, stored  3,968" in result.stdout
    for code in REAL_CURRENT_NETWORKS:
        assert code in result.stdout
    assert f"loaded into database {target}" in result.stdout
    assert (tmp_path / "networks_map.html").is_file()
    assert database_status(db)["networks"] == {"BIN": {"active": 4}}

    # The 2018 list of BIN Pimberg, not loaded by the demo, derived on request (not stored).
    launch = runner.invoke(
        cli.app,
        [
            "networks",
            "from-streets",
            str(SAMPLE_DIR / REAL_STREETS),
            "--networks",
            str(SAMPLE_DIR / REAL_NETWORKS),
            "--only",
            "BIERBEEK-PIMBERG-2018",
            "--no-store",
        ],
        env={**env, **_pointing_at(settings, target)},
    )
    assert launch.exit_code == 0, launch.output
    assert "BIERBEEK-PIMBERG-2018" in launch.stdout
    assert "'Uitbereidingslaan' read as 'Uitbreidingslaan'" in launch.stdout
    assert "stored" not in launch.stdout
    assert database_status(db)["networks"] == {"BIN": {"active": 4}}

    env_same = {**env, **_pointing_at(settings, target)}
    refused = runner.invoke(cli.app, ["demo", "--real", "--database", target], env=env_same)
    assert isinstance(refused.exception, InvalidInput)
    assert "a database of its own" in str(refused.exception)


def test_demo_real_names_a_database_missing_on_a_server(engine: Engine, settings: Settings) -> None:
    # A configured server (here: the test server, addressed by URL) without the sample's database.
    url = settings.database_url or Cluster(settings).url()
    result = CliRunner().invoke(
        cli.app,
        ["demo", "--real", "--database", "bingeo_no_such_database"],
        env={"BINGEO_DATABASE_URL": url},
    )
    assert isinstance(result.exception, DatabaseUnavailable)
    message = str(result.exception)
    assert "'bingeo_no_such_database'" in message and "does not exist" in message
    assert "create it" in message


def test_real_settings_point_at_the_named_database() -> None:
    embedded = real_demo_settings(Settings(database_name="bingeo", database_url=None))
    assert (embedded.database_name, embedded.database_url) == ("bingeo_real", None)
    server = real_demo_settings(
        Settings(database_url="postgresql://u:secret@db.example:5432/bingeo"), "sample"
    )
    assert server.database_url == "postgresql://u:secret@db.example:5432/sample"
    with pytest.raises(InvalidInput):
        real_demo_settings(Settings(database_url="postgresql://u@h/mine"), "mine")


def _pointing_at(settings: Settings, database: str) -> dict[str, str]:
    """The environment that makes ``database`` the configured one."""
    if settings.database_url:
        url = make_url(settings.database_url).set(database=database)
        return {"BINGEO_DATABASE_URL": url.render_as_string(hide_password=False)}
    return {"BINGEO_DATABASE_NAME": database}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
