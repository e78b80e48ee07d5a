#!/usr/bin/env python3
"""Cut the Bierbeek sample in data/ out of the real Belgian data set (reproducibly).

Reads the ``bierbeek_bin`` folder of the real data (``BINGEO_REAL_DATA_DIR``, else
``../shared/data/real`` next to the checkout) and writes only the Bierbeek (NIS 24011) part:

- ``bierbeek_addresses.csv``: the records of postcode 3360, columns unchanged; positions outside
  Belgium (a placeholder of the source extract) are emptied, so those records import as unlocated;
- ``bierbeek_networks.csv`` and ``bierbeek_streets.csv``: the Bierbeek rows of the published lists;
- ``bierbeek_context.gpkg``: layers ``municipality``, ``deelgemeenten``, ``wijken`` (NIS code
  24011) and ``police_zone`` (the zone that has 24011 among its members), EPSG:31370, unchanged.

Usage: ``python scripts/cut-real-sample.py [--source DIR] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

ROOT = Path(__file__).resolve().parents[1]
NIS_CODE = "24011"
POSTCODE = "3360"
# Belgium's extent in WGS84, with a margin: a position outside it is no Belgian address.
BELGIUM_LON = (2.5, 6.5)
BELGIUM_LAT = (49.45, 51.55)
SOURCE_DATE = "2026-03-12T00:00:00Z"
LAYERS = {
    "municipality": ("municipalities", "nis_code"),
    "deelgemeenten": ("deelgemeenten", "nis_code"),
    "wijken": ("wijken", "nis_code"),
    "police_zone": ("police_zones", "member_nis_codes"),
}


def main() -> None:
    """Read the arguments, cut the sample and print what was written."""
    default_source = os.environ.get("BINGEO_REAL_DATA_DIR") or ROOT.parent / "shared/data/real"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(default_source))
    parser.add_argument("--out", type=Path, default=ROOT / "data")
    args = parser.parse_args()
    source = args.source / "bierbeek_bin"
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in cut(source, args.out).items():
        print(f"{name}: {rows}")


def cut(source: Path, out: Path) -> dict[str, int]:
    """Write the sample files into ``out``; returns the rows (features) written per file/layer."""
    written: dict[str, int] = {}
    addresses = _read_csv(source / "addresses_crab_bin_municipalities.csv")
    addresses = addresses[addresses["postcode"] == POSTCODE].copy()
    lon = pd.to_numeric(addresses["lon"], errors="coerce")
    lat = pd.to_numeric(addresses["lat"], errors="coerce")
    abroad = (addresses["lat"] != "") & ~(lon.between(*BELGIUM_LON) & lat.between(*BELGIUM_LAT))
    addresses.loc[abroad, ["lat", "lon"]] = ""
    written["bierbeek_addresses.csv"] = _write_csv(addresses, out / "bierbeek_addresses.csv")
    written["  positions emptied (outside Belgium)"] = int(abroad.sum())

    networks = _read_csv(source / "bin_networks_published.csv")
    networks = networks[networks["nis_code"] == NIS_CODE]
    written["bierbeek_networks.csv"] = _write_csv(networks, out / "bierbeek_networks.csv")
    streets = _read_csv(source / "bin_streets_published.csv")
    streets = streets[streets["bin_id"].isin(networks["bin_id"])]
    written["bierbeek_streets.csv"] = _write_csv(streets, out / "bierbeek_streets.csv")

    gpkg = out / "bierbeek_context.gpkg"
    gpkg.unlink(missing_ok=True)
    # A fixed date in the GeoPackage's metadata (the source's date): same source, same file.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": SOURCE_DATE})
    try:
        for layer, (source_layer, column) in LAYERS.items():
            frame = gpd.read_file(source / "bin_municipalities_context.gpkg", layer=source_layer)
            keep = frame[column].str.split(",").apply(lambda codes: NIS_CODE in codes)
            frame[keep].to_file(gpkg, layer=layer, driver="GPKG", engine="pyogrio")
            written[f"bierbeek_context.gpkg:{layer}"] = int(keep.sum())
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    return written


def _read_csv(path: Path) -> pd.DataFrame:
    # Everything as text, empty cells kept empty: the values are written back as they were read.
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def _write_csv(frame: pd.DataFrame, path: Path) -> int:
    frame.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return len(frame)


if __name__ == "__main__":
    main()
