"""The demos: generate Demodorp, or load the real Bierbeek sample of ``data/``, import it like
any user's data, and draw the networks map."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bingeo.db import maps as map_repo
from bingeo.db.models import AreaLevel
from bingeo.demo import NIS_CODE, generate_demo, write_demo_files
from bingeo.errors import InvalidInput, NotFound
from bingeo.maps import network_map, save_map, texts
from bingeo.services.imports import (
    Progress,
    import_addresses,
    import_areas,
    import_networks,
)
from bingeo.services.streetlists import derive_from_street_list, store_derived
from bingeo.settings import Settings

MAP_FILE = "networks_map.html"
MAP_TITLES = {
    "nl": {"demo": "Demodorp: BIN- en BIN-Z-netwerken", "real": "Bierbeek: BIN's volgens de "
           "gepubliceerde stratenlijsten", "wijken": "Wijken"},
    "fr": {"demo": "Demodorp : réseaux BIN et BIN-Z", "real": "Bierbeek : BIN selon les listes "
           "de rues publiées", "wijken": "Quartiers"},
}  # fmt: skip
# The real sample shipped in the project's data/ folder (data/README.md names the sources).
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data"
REAL_DATABASE = "bingeo_real"
REAL_NIS_CODE = "24011"
REAL_CONTEXT = "bierbeek_context.gpkg"
REAL_LAYERS = (
    ("municipality", AreaLevel.municipality),
    ("deelgemeenten", AreaLevel.deelgemeente),
    ("wijken", AreaLevel.wijk),
    ("police_zone", AreaLevel.police_zone),
)
REAL_ADDRESSES = "bierbeek_addresses.csv"
REAL_STREETS = "bierbeek_streets.csv"
REAL_NETWORKS = "bierbeek_networks.csv"
# The networks of Bierbeek today; the list also holds BIN Pimberg's list at its 2018 launch,
# which the current BIN Pimberg replaced: loading both would show one network twice.
REAL_CURRENT_NETWORKS = (
    "BIERBEEK-MARTINUSBERG",
    "BIERBEEK-PIMBERG",
    "BIERBEEK-KRIJKELBERG",
    "BIERBEEK-OPVELP",
)


def run_demo(
    engine: Engine,
    settings: Settings,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    language: str = "nl",
) -> dict[str, object]:
    """Generate the demo files, import them (one transaction each) and write the map (texts in
    ``language``, working offline).

    Importers upsert, so running the demo again leaves the database as it is. Returns the import
    summaries, the folder of the files and the path of the map.
    """
    texts(language)  # an unknown language is refused before any work
    titles = MAP_TITLES[language]
    folder = Path(out_dir) if out_dir is not None else Path(settings.out_dir) / "demo"
    _say(progress, f"generating the demo municipality into {folder}")
    data = generate_demo()
    files = write_demo_files(data, folder)
    imports = []
    for demo_file in files:
        if demo_file.kind == "addresses":
            summary = import_addresses(engine, demo_file.path, progress=progress)
        elif demo_file.kind == "networks":
            summary = import_networks(engine, demo_file.path, progress=progress)
        else:
            summary = import_areas(
                engine,
                demo_file.path,
                AreaLevel(demo_file.kind),
                layer=demo_file.layer,
                progress=progress,
            )
        imports.append(summary.as_dict())
    _say(progress, "drawing the networks map")
    networks, map_path = _networks_map(
        engine, settings, NIS_CODE, titles["demo"], folder / MAP_FILE, language
    )
    return {
        "folder": str(folder),
        "imports": imports,
        "networks": len(networks),
        "map": str(map_path),
    }


def real_demo_settings(settings: Settings, database: str = REAL_DATABASE) -> Settings:
    """The settings of the real sample's own database, on the configured server or cluster.

    The sample never goes into the database bingeo is configured for (a user's demo or working
    data): the name must differ from it.
    """
    configured = (
        make_url(settings.database_url).database
        if settings.database_url
        else settings.database_name
    )
    if database == configured:
        raise InvalidInput(
            f"the real sample gets a database of its own: {database!r} is the configured "
            "database; choose another name with --database"
        )
    update: dict[str, object] = {"database_name": database}
    if settings.database_url:
        url = make_url(settings.database_url).set(database=database)
        update["database_url"] = url.render_as_string(hide_password=False)
    return settings.model_copy(update=update)


def run_real_demo(
    engine: Engine,
    settings: Settings,
    *,
    sample_dir: Path | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    language: str = "nl",
) -> dict[str, object]:
    """Load the real Bierbeek sample through the importers, derive its networks from the
    published street lists, store them and write the map (texts in ``language``).

    Every step is one transaction and upserts, so running it again changes nothing. Returns the
    import summaries, the derived networks with every finding, and the path of the map.
    """
    texts(language)  # an unknown language is refused before any work
    titles = MAP_TITLES[language]
    folder = Path(sample_dir) if sample_dir is not None else SAMPLE_DIR
    missing = [
        name
        for name in (REAL_CONTEXT, REAL_ADDRESSES, REAL_STREETS, REAL_NETWORKS)
        if not (folder / name).is_file()
    ]
    if missing:
        raise NotFound(f"the real sample is incomplete in {folder}: {', '.join(missing)} missing")
    out = Path(out_dir) if out_dir is not None else Path(settings.out_dir) / "demo-real"
    _say(progress, f"loading the real Bierbeek sample from {folder}")
    imports = [
        import_areas(engine, folder / REAL_CONTEXT, level, layer=layer, progress=progress)
        for layer, level in REAL_LAYERS
    ]
    imports.append(import_addresses(engine, folder / REAL_ADDRESSES, progress=progress))
    derived = derive_from_street_list(
        engine,
        folder / REAL_STREETS,
        networks_csv=folder / REAL_NETWORKS,
        only=set(REAL_CURRENT_NETWORKS),
        progress=progress,
    )
    store_derived(engine, derived)
    _say(progress, "drawing the networks map")
    networks, map_path = _networks_map(
        engine, settings, REAL_NIS_CODE, titles["real"], out / MAP_FILE, language
    )
    return {
        "folder": str(folder),
        "imports": [summary.as_dict() for summary in imports],
        "derived": derived.as_dict(),
        "networks": len(networks),
        "map": str(map_path),
    }


def _networks_map(
    engine: Engine, settings: Settings, nis_code: str, title: str, path: Path, language: str
) -> tuple[gpd.GeoDataFrame, Path]:
    """The networks of a municipality over its wijken, written to ``path`` (works offline)."""
    with engine.connect() as connection:
        networks = map_repo.networks_frame(connection, nis_code=nis_code)
        wijken = map_repo.areas_frame(connection, AreaLevel.wijk, nis_code=nis_code)
    path = save_map(
        lambda assets: network_map(
            networks,
            areas=wijken,
            tiles=settings.tiles or None,
            title=title,
            areas_name=MAP_TITLES[language]["wijken"],
            assets_url=assets,
            language=language,
        ),
        path,
    )
    return networks, path


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
