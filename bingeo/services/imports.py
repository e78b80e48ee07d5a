"""Imports of reference areas, addresses and networks: one transaction each, with a summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine

from bingeo.addresses import AddressColumns, AddressReadStats, read_addresses, repeated_keys
from bingeo.areas import Rejection, read_areas
from bingeo.db import addresses as address_repo
from bingeo.db import areas as area_repo
from bingeo.db import networks as network_repo
from bingeo.db.models import AreaLevel, NetworkStatus
from bingeo.errors import InvalidInput
from bingeo.networks import read_networks
from bingeo.services.lookup import refresh_lookup_tables
from bingeo.services.matching import rematch, rematch_changed_networks

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
        rematch_changed_networks(connection)
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
    timings: dict[str, float] | None = None,
) -> ImportSummary:
    """Import an address CSV with one ``COPY`` into staging and one merge, in one transaction.

    ``timings``, when given, receives the seconds spent per phase (for benchmarks).
    """
    stats = AddressReadStats()
    summary = ImportSummary(file=str(path), kind="addresses")
    key_hashes: list[np.ndarray] = []

    def chunks() -> Iterator[pa.Table]:
        for chunk in read_addresses(
            path, columns=columns or AddressColumns(), crs=crs, source=source, stats=stats
        ):
            key_hashes.append(chunk.key_hashes)
            yield chunk.table
            _say(progress, f"read {stats.read:,} rows")

    with engine.begin() as connection:
        staging = address_repo.create_address_staging(connection)
        started = time.perf_counter()
        address_repo.stage_address_tables(connection, staging, chunks())
        staged = time.perf_counter()
        summary.read, summary.unlocated = stats.read, stats.unlocated
        _check_rejections(
            summary, [Rejection(r, reason) for r, reason in stats.rejected], skip_invalid
        )
        _say(progress, "merging into the address table")
        address_repo.number_repeated_keys(connection, staging, repeated_keys(key_hashes))
        merge_timings: dict[str, float] = {}
        counts = address_repo.merge_staged_addresses(connection, staging, timings=merge_timings)
        refreshing = time.perf_counter()
        refresh_lookup_tables(connection)  # new street names become searchable at once
        merge_timings["refresh lookup tables"] = time.perf_counter() - refreshing
        if counts["stored"] or counts["updated"]:
            # New or moved addresses: a rematch writes only the pairs that change.
            rematch(connection, progress=progress)
    if timings is not None:
        reading = sum(stats.seconds.values())
        timings.update({f"read: {phase}": s for phase, s in stats.seconds.items()})
        timings["COPY to staging (beyond reading)"] = staged - started - reading
        merging = sum(merge_timings.values())
        timings["number repeated keys, commit"] = time.perf_counter() - staged - merging
        timings.update(merge_timings)
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
