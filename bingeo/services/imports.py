"""Imports of reference areas, addresses and networks: one transaction each, with a summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bingeo.addresses import AddressColumns, AddressReadStats, read_addresses
from bingeo.areas import Rejection, read_areas
from bingeo.db import addresses as address_repo
from bingeo.db import areas as area_repo
from bingeo.db import networks as network_repo
from bingeo.db.models import AreaLevel, NetworkStatus
from bingeo.errors import InvalidInput
from bingeo.networks import read_networks

Progress = Callable[[str], None]
MAX_LISTED_REJECTIONS = 20


@dataclass
class ImportSummary:
    """What an import did: every count the user needs to trust it."""

    file: str
    kind: str
    read: int = 0
    stored: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: list[str] = field(default_factory=list)
    unlocated: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The summary as plain data (for ``--json`` and the API)."""
        return {
            "file": self.file,
            "kind": self.kind,
            "read": self.read,
            "stored": self.stored,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "repaired": len(self.repaired),
            "repairs": self.repaired,
            "unlocated": self.unlocated,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejections": self.rejected,
        }


def import_areas(
    engine: Engine,
    path: Path,
    level: AreaLevel | str,
    *,
    layer: str | None = None,
    crs: str | None = None,
    code_column: str | None = None,
    name_column: str | None = None,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import reference areas of one level from a geodata file, in one transaction."""
    level = AreaLevel(level)
    _say(progress, f"reading {path}")
    batch = read_areas(
        path, level, layer=layer, crs=crs, code_column=code_column, name_column=name_column
    )
    summary = ImportSummary(file=str(path), kind=level.value, read=batch.read)
    summary.repaired = [r.reason for r in batch.repaired]
    _check_rejections(summary, batch.rejected, skip_invalid)
    with engine.begin() as connection:
        _say(progress, f"storing {len(batch.frame)} {level.value} areas")
        summary.stored, summary.updated = area_repo.upsert_areas(connection, level, batch.frame)
        area_repo.replace_police_zone_members(connection, batch.members)
    summary.unchanged = len(batch.frame) - summary.stored - summary.updated
    return summary


def import_networks(
    engine: Engine,
    path: Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    default_status: NetworkStatus | str = NetworkStatus.active,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import network areas (name, kind, status) from GeoJSON or GeoPackage, in one transaction."""
    _say(progress, f"reading {path}")
    batch = read_networks(path, layer=layer, crs=crs, default_status=NetworkStatus(default_status))
    summary = ImportSummary(file=str(path), kind="networks", read=batch.read)
    summary.repaired = [r.reason for r in batch.repaired]
    _check_rejections(summary, batch.rejected, skip_invalid)
    with engine.begin() as connection:
        summary.stored, summary.updated = network_repo.upsert_networks(connection, batch.frame)
    summary.unchanged = len(batch.frame) - summary.stored - summary.updated
    return summary


def import_addresses(
    engine: Engine,
    path: Path,
    *,
    columns: AddressColumns | None = None,
    crs: str | None = None,
    source: str | None = None,
    skip_invalid: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import an address CSV with ``COPY`` into staging and one upsert, in one transaction."""
    stats = AddressReadStats()
    summary = ImportSummary(file=str(path), kind="addresses")
    with engine.begin() as connection:
        staging = address_repo.create_address_staging(connection)
        for chunk in read_addresses(
            path, columns=columns or AddressColumns(), crs=crs, source=source, stats=stats
        ):
            address_repo.stage_addresses(connection, staging, chunk.frame)
            _say(progress, f"read {stats.read:,} rows")
        summary.read, summary.unlocated = stats.read, stats.unlocated
        _check_rejections(
            summary, [Rejection(r, reason) for r, reason in stats.rejected], skip_invalid
        )
        _say(progress, "merging into the address table")
        counts = address_repo.merge_staged_addresses(connection, staging)
    summary.stored, summary.updated, summary.duplicates = (
        counts["stored"],
        counts["updated"],
        counts["duplicates"],
    )
    summary.unchanged = (
        summary.read - len(summary.rejected) - summary.duplicates - summary.stored - summary.updated
    )
    return summary


def _check_rejections(
    summary: ImportSummary, rejected: list[Rejection], skip_invalid: bool
) -> None:
    summary.rejected = [r.reason for r in rejected]
    if rejected and not skip_invalid:
        listed = "\n  ".join(summary.rejected[:MAX_LISTED_REJECTIONS])
        more = len(rejected) - MAX_LISTED_REJECTIONS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise InvalidInput(
            f"{summary.file}: {len(rejected)} of {summary.read} records rejected, nothing stored "
            f"(use --skip-invalid to store the others):\n  {listed}{tail}"
        )


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)
