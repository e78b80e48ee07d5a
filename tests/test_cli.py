"""The ``bingeo`` command line, run as a user runs it: a separate process on the test database."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from live_server import live_server
from sqlalchemy import Engine

from bingeo.db.models import Role
from bingeo.services.status import database_status
from bingeo.services.users import add_user, list_tokens
from bingeo.settings import Settings

CONSOLE_SCRIPT = Path(sys.executable).with_name("bingeo")


def run(settings: Settings, *args: str, script: bool = False) -> subprocess.CompletedProcess[str]:
    """``bingeo ARGS`` against the test database (through ``main``, or the installed script)."""
    env = dict(os.environ)
    env.update(
        {
            "BINGEO_DATABASE_NAME": settings.database_name,
            "BINGEO_DATA_DIR": str(settings.data_dir),
        }
    )
    if settings.database_url:
        env["BINGEO_DATABASE_URL"] = settings.database_url
    command = (
        [str(CONSOLE_SCRIPT)]
        if script
        else [sys.executable, "-c", "from bingeo.cli import main; main()"]
    )
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_status_json_gives_the_counts(db: Engine, settings: Settings, real_data: Path) -> None:
    gpkg = real_data / "gent" / "gent_context.gpkg"
    imported = run(settings, "import", "wijken", str(gpkg), "--layer", "wijken", "--json")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["kind"], summary["read"], summary["stored"]) == ("wijk", 25, 25)

    result = run(settings, "status", "--json", script=True)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["reference_areas"] == {"wijk": 25}
    assert status["addresses"] == {"located": 0, "approximate": 0, "unlocated": 0}
    assert status["networks"] == {}
    assert settings.database_name in status["database"]
    assert status == json.loads(json.dumps(database_status(db), default=str))


def test_second_import_reports_unchanged(db: Engine, settings: Settings, real_data: Path) -> None:
    gpkg = real_data / "gent" / "gent_context.gpkg"
    args = ("import", "deelgemeenten", str(gpkg), "--layer", "deelgemeenten")
    assert run(settings, *args).returncode == 0
    again = run(settings, *args)
    assert again.returncode == 0, again.stderr
    assert "stored 0, updated 0, unchanged 14" in again.stdout


def test_bad_file_exits_non_zero_with_one_error_line(
    db: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "sectors.geojson"
    path.write_text("not geodata at all")
    result = run(settings, "import", "sectors", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"error [invalid_input]: {path}: not a readable geodata file" in result.stderr
    assert "Traceback" not in result.stderr
    assert database_status(db)["reference_areas"] == {}


def test_rejected_rows_are_listed_in_the_error(
    db: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text("street,housenumber,lat,lon\nKouter,1,51.05,3.72\nKouter,2,51.05,x\n")
    result = run(settings, "import", "addresses", str(path))
    assert result.returncode == 1
    assert f"error [invalid_input]: {path}: 1 of 2 records rejected" in result.stderr
    assert f"{path}: row 3: coordinates are not numbers" in result.stderr
    assert database_status(db)["addresses"] == {"located": 0, "approximate": 0, "unlocated": 0}

    skipped = run(settings, "import", "addresses", str(path), "--skip-invalid", "--json")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["rejected"] == 1
    assert database_status(db)["addresses"] == {"located": 1, "approximate": 0, "unlocated": 0}


def test_unknown_crs_has_its_own_code(db: Engine, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "networks.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "BIN", "kind": "BIN"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [
                                [
                                    [414000, 6627000],
                                    [415000, 6627000],
                                    [415000, 6628000],
                                    [414000, 6627000],
                                ]
                            ],
                        },
                    }
                ],
            }
        )
    )
    result = run(settings, "import", "networks", str(path))
    assert result.returncode == 1
    assert f"error [unknown_crs]: {path}: CRS" in result.stderr


def test_usage_error_exits_2(settings: Settings) -> None:
    result = run(settings, "import", "sectors")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr


def test_db_url_and_status(settings: Settings, engine: Engine) -> None:
    url = run(settings, "db", "url")
    assert url.returncode == 0, url.stderr
    printed = url.stdout.strip()
    assert printed.startswith("postgresql+psycopg://")
    assert settings.database_name in printed
    if settings.embedded:
        status = run(settings, "db", "status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("embedded PostGIS running (pid ")


def test_serve_with_two_worker_processes(db: Engine, settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    serve = ["--workers", "2"]
    with live_server(settings, serve=serve, output=log, start_timeout_s=90) as base:
        answers = [httpx.get(f"{base}/healthz", timeout=5).status_code for _ in range(20)]
    assert set(answers) == {200}
    assert log.read_text().count("Application startup complete") == 2


def test_tokens_expire_after_90_days_unless_told_never(db: Engine, settings: Settings) -> None:
    add_user(db, "tess", Role.police_analyst, police_zone_code="5388")
    made = {}
    for label, options in {"default": [], "ten": ["--expires-in-days", "10"]}.items():
        result = run(settings, "tokens", "create", "tess", "--label", label, *options)
        assert result.returncode == 0, result.stderr
        made[label] = result
    never = run(settings, "tokens", "create", "tess", "--label", "never", "--expires-in-days", "0")
    assert never.returncode == 0, never.stderr
    assert run(settings, "tokens", "create", "tess", "--expires-in-days", "-1").returncode == 2
    now = dt.datetime.now(dt.UTC)
    lifetimes = {
        t["label"]: None if t["expires_at"] is None else (t["expires_at"] - now).days
        for t in list_tokens(db)
    }
    assert lifetimes == {"default": 89, "ten": 9, "never": None}
