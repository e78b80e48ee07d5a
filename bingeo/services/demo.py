"""The demo: generate Demodorp, import it like any user's data, and draw the networks map."""

from __future__ import annotations

from pathlib import Path

import folium
from sqlalchemy import Engine

from bingeo.db import maps as map_repo
from bingeo.db.models import AreaLevel
from bingeo.demo import NIS_CODE, generate_demo, write_demo_files
from bingeo.maps import network_map
from bingeo.services.imports import (
    Progress,
    import_addresses,
    import_areas,
    import_networks,
)
from bingeo.settings import Settings

MAP_FILE = "networks_map.html"


def run_demo(
    engine: Engine,
    settings: Settings,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, object]:
    """Generate the demo files, import them (one transaction each) and write the map.

    Importers upsert, so running the demo again leaves the database as it is. Returns the import
    summaries, the folder of the files and the path of the map.
    """
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
    with engine.connect() as connection:
        networks = map_repo.networks_frame(connection, nis_code=NIS_CODE)
        wijken = map_repo.areas_frame(connection, AreaLevel.wijk, nis_code=NIS_CODE)
    fmap = network_map(
        networks,
        areas=wijken,
        tiles=settings.tiles or None,
        title="Demodorp: BIN and BIN-Z networks",
        areas_name="Wijken",
    )
    map_path = save_map(fmap, folder / MAP_FILE)
    return {
        "folder": str(folder),
        "imports": imports,
        "networks": len(networks),
        "map": str(map_path),
    }


def save_map(fmap: folium.Map, path: Path) -> Path:
    """Write a folium map as a standalone HTML file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmap.save(str(path))
    return path


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
