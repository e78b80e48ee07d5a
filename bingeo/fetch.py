"""Known official open-data downloads (``bingeo fetch NAME``): what, where, under which licence.

A download is only kept when its SHA-256 is verified. An entry carries the checksum when a fixed
one is known; the regional BeST files are republished regularly under the same address and the
Statbel files have no published checksum, so these entries carry none: the user gives one from a
source they trust, or accepts the computed one explicitly (and it is printed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from bingeo.errors import InvalidInput, NotFound

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
STATBEL_SECTORS = (
    "https://statbel.fgov.be/sites/default/files/files/opendata/Statistische%20sectoren/"
    "sh_statbel_statistical_sectors_31370_{year}0101.geojson.zip"
)
STATBEL_LICENCE = "Statbel open-data licence; credit Statbel (Belgian statistical office)"
BEST_ADDRESSES = "https://opendata.bosa.be/download/best/openaddress-be{region}.zip"
BEST_LICENCE = (
    "open data of the regional address register ({register}), published by BOSA; check the "
    "terms on https://opendata.bosa.be before redistributing"
)
BEST_IMPORT = (
    "; import the CSV inside with `bingeo import addresses FILE --street-column streetname_nl "
    "--lat-column EPSG:4326_lat --lon-column EPSG:4326_lon --id-column address_id`"
)
NO_FIXED_CHECKSUM = "republished under the same address; no fixed checksum can be known"
NO_PUBLISHED_CHECKSUM = "the publisher gives no checksum"


@dataclass(frozen=True)
class Download:
    """An official download: ``sha256`` None means no checksum is known (``checksum_note`` says
    why); ``size_bytes`` None means the size is not known in advance."""

    name: str
    url: str
    description: str
    licence: str
    sha256: str | None = None
    size_bytes: int | None = None
    checksum_note: str = ""

    @property
    def filename(self) -> str:
        """The file name the download is stored under: the last part of its URL."""
        return file_name_of(self.url)

    def with_url(self, url: str) -> Download:
        """The same download from another address (a mirror); checksum and size still apply."""
        return replace(self, url=check_url(url))


def _statbel(year: int) -> Download:
    return Download(
        name=f"statbel-sectors-{year}",
        url=STATBEL_SECTORS.format(year=year),
        description=(
            f"Statbel statistical sectors of Belgium, 1 January {year}, GeoJSON in EPSG:31370, "
            "zipped; import the GeoJSON inside with `bingeo import sectors FILE`"
        ),
        licence=STATBEL_LICENCE,
        checksum_note=NO_PUBLISHED_CHECKSUM,
    )


def _best(region: str, label: str, register: str) -> Download:
    return Download(
        name=f"best-addresses-{label}",
        url=BEST_ADDRESSES.format(region=region),
        description=(
            f"BeST addresses of {label.capitalize()} (the latest file), CSV zipped" + BEST_IMPORT
        ),
        licence=BEST_LICENCE.format(register=register),
        checksum_note=NO_FIXED_CHECKSUM,
    )


DOWNLOADS: Mapping[str, Download] = {
    d.name: d
    for d in (
        _statbel(2025),
        _statbel(2024),
        _best("vlg", "flanders", "Digitaal Vlaanderen"),
        _best("bru", "brussels", "paradigm.brussels"),
        _best("wal", "wallonia", "Service public de Wallonie"),
    )
}


def find_download(name: str, registry: Mapping[str, Download] = DOWNLOADS) -> Download:
    """The download called ``name``; an unknown name is answered with the known ones."""
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise NotFound(f"no download called {name!r}; known: {known}") from None


def parse_sha256(text: str) -> str:
    """A SHA-256 given by a user, as 64 lower-case hex digits."""
    value = text.strip().lower()
    if not SHA256_PATTERN.fullmatch(value):
        raise InvalidInput(f"{text!r} is not a SHA-256 (64 hexadecimal digits)")
    return value


def check_url(url: str) -> str:
    """An http(s) URL with a host and a file name, or an error naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{url!r} is not an http or https URL")
    file_name_of(url)
    return url


def file_name_of(url: str) -> str:
    """The last part of a URL's path, decoded; refused when it names no file."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise InvalidInput(f"{url!r} names no file to store")
    return name


__all__ = ["DOWNLOADS", "Download", "check_url", "file_name_of", "find_download", "parse_sha256"]
