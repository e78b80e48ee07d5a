"""Imports of reference areas, addresses and networks: one transaction each, with a summary."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full, Queue

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, Engine

from bingeo.addresses import (
    AddressColumns,
    AddressReadStats,
    KeyNumbering,
    distinct_places,
    distinct_streets,
    numbered_rows,
    postcode_places,
    read_addresses,
    street_pairs,
)
from bingeo.areas import Rejection, read_areas
from bingeo.db import addresses as address_repo
from bingeo.db import areas as area_repo
from bingeo.db import networks as network_repo
from bingeo.db.engine import database_errors
from bingeo.db.models import AreaLevel, NetworkStatus
from bingeo.errors import InvalidInput
from bingeo.lookup import normalise_street
from bingeo.networks import PLACE_LEVELS, read_networks
from bingeo.placement import place_addresses
from bingeo.services.coverage import refresh_after_import
from bingeo.services.lookup import refresh_lookup_tables
from bingeo.services.matching import rematch
from bingeo.services.networks import store_networks

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
    # Addresses of the file's streets without a position of the register, placed, per method.
    approximate: dict[str, int] = field(default_factory=dict)
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
            "approximate": self.approximate,
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
    if len(batch.frame):  # nothing valid (every feature skipped): nothing to write at all
        with database_errors(), engine.begin() as connection:
            _say(progress, f"storing {len(batch.frame)} {level.value} areas")
            summary.stored, summary.updated = area_repo.upsert_areas(connection, level, batch.frame)
            area_repo.replace_police_zone_members(connection, batch.members)
            if summary.stored or summary.updated:
                area_repo.analyze(connection)  # the spatial joins below plan on real figures
                refresh_after_import(connection, [level])  # each address's area at this level
            if level in PLACE_LEVELS or batch.members:
                network_repo.refresh_places(connection)  # where every network lies
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
    changed_by: str | None = "import",
    progress: Progress | None = None,
) -> ImportSummary:
    """Import network areas (name, kind, status) from GeoJSON or GeoPackage, in one transaction."""
    _say(progress, f"reading {path}")
    batch = read_networks(path, layer=layer, crs=crs, default_status=NetworkStatus(default_status))
    summary = ImportSummary(file=str(path), kind="networks", read=batch.read)
    summary.repaired = [r.reason for r in batch.repaired]
    _check_rejections(summary, batch.rejected, skip_invalid)
    with database_errors(), engine.begin() as connection:
        summary.stored, summary.updated = store_networks(
            connection, batch.frame, changed_by=changed_by, reason=f"import of {Path(path).name}"
        )
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
    """Import an address CSV with one binary ``COPY``, in one transaction.

    The file is parsed in a thread while the previous chunk streams to PostgreSQL. Rejected
    rows are known only once the whole file is read; they abort the transaction (nothing is
    stored) unless ``skip_invalid``. ``timings``, when given, receives the seconds per phase.
    """
    stats = AddressReadStats()
    summary = ImportSummary(file=str(path), kind="addresses")
    numbering = KeyNumbering()
    streets: list[pa.Table] = []
    places: list[pa.Table] = []
    duplicates = 0

    def rows() -> Iterator[pa.Table]:
        nonlocal duplicates
        for chunk in read_addresses(
            path, columns=columns or AddressColumns(), crs=crs, source=source, stats=stats
        ):
            started = time.perf_counter()
            table, repeated = numbered_rows(chunk, numbering.number(chunk))
            duplicates += repeated
            streets.append(street_pairs(table))
            places.append(postcode_places(table))
            stats.clock("number repeated keys, street names", started)
            yield table
            _say(progress, f"read {stats.read:,} rows")

    with database_errors(), engine.begin() as connection:
        started = time.perf_counter()
        store_timings: dict[str, float] = {}
        counts = address_repo.store_addresses(
            connection, _prefetched(rows()), timings=store_timings
        )
        summary.read, summary.unlocated = stats.read, stats.unlocated
        # Raising here rolls the transaction back: nothing of the file stays stored.
        _check_rejections(
            summary, [Rejection(r, reason) for r, reason in stats.rejected], skip_invalid
        )
        loaded = time.perf_counter()
        _say(progress, "storing street names")
        touched = distinct_streets(streets)
        address_repo.store_streets(connection, touched, normalise_street)
        store_timings["street names"] = time.perf_counter() - loaded
        refreshing = time.perf_counter()
        # New street names and postcodes become searchable at once.
        refresh_lookup_tables(connection, distinct_places(places))
        store_timings["refresh lookup tables"] = time.perf_counter() - refreshing
        if counts["stored"] or counts["updated"]:
            # Before matching: an approximate position is matched like any other.
            _say(progress, "placing addresses without a position")
            placing = time.perf_counter()
            summary.approximate, _ = place_unlocated(connection, touched, timings=store_timings)
            store_timings["approximate positions"] = time.perf_counter() - placing
            # New or moved addresses: a rematch writes only the pairs that change.
            rematch(connection, progress=progress)
            placing = time.perf_counter()
            refresh_after_import(connection)  # the reference areas of new and moved addresses
            store_timings["address areas"] = time.perf_counter() - placing
            # Planner statistics now, not when autovacuum gets to it: a spatial join planned on
            # the statistics of an empty or half-placed table can take minutes instead of one.
            address_repo.analyze(connection)
        committing = time.perf_counter()
    if timings is not None:
        timings.update({f"read: {phase}": s for phase, s in stats.seconds.items()})
        timings.update(store_timings)
        timings["rematch"] = (
            committing
            - refreshing
            - store_timings["refresh lookup tables"]
            - store_timings.get("approximate positions", 0.0)
            - store_timings.get("address areas", 0.0)
        )
        timings["commit"] = time.perf_counter() - committing
        timings["load (wall clock, reading overlaps)"] = loaded - started
    summary.stored, summary.updated, summary.duplicates = (
        counts["stored"],
        counts["updated"],
        duplicates,
    )
    summary.unchanged = (
        summary.read - len(summary.rejected) - summary.duplicates - summary.stored - summary.updated
    )
    return summary


def place_unlocated(
    connection: Connection, streets: pd.DataFrame, *, timings: dict[str, float] | None = None
) -> tuple[dict[str, int], int]:
    """Give the addresses of ``streets`` ((nis_code, name) pairs) that the register does not
    place an approximate position from their street (``bingeo.placement``), in the caller's
    transaction: (how many each method places, how many stored positions changed).

    Every unlocated address of those streets is placed again, so a located record that came in
    improves its neighbours' positions; only the positions that change are written.
    ``timings``, when given, receives the seconds of each step.
    """
    if streets.empty:
        return {}, 0
    started = time.perf_counter()
    records = address_repo.street_records(connection, streets).to_pandas()
    read = time.perf_counter()
    found = place_addresses(records)
    computed = time.perf_counter()
    unlocated = ~np.isfinite(records["x"].to_numpy(dtype=float))
    placements = pa.table(
        {
            "id": pa.array(records["id"].to_numpy()[unlocated]),
            # Millimetres, as imported positions: a repeated placement is then the same.
            "x": pa.array(np.round(found.x[unlocated], 3), from_pandas=True),
            "y": pa.array(np.round(found.y[unlocated], 3), from_pandas=True),
            "position_method": pa.array(found.methods()[unlocated], type=pa.string()),
        }
    )
    written = address_repo.store_placements(connection, placements)
    if timings is not None:
        timings["approximate positions: read the streets"] = read - started
        timings["approximate positions: place"] = computed - read
        timings["approximate positions: write"] = time.perf_counter() - computed
    return found.counts(), written


def _prefetched(items: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """``items`` produced by a thread, up to ``depth`` ahead of the consumer.

    Arrow, numpy and psycopg release the GIL in their heavy parts, so parsing the next chunk
    overlaps with the server reading the previous one. Errors are raised in the consumer.
    """
    queue: Queue[tuple[str, object]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(("item", item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            queue.put(("error", exc))

    worker = threading.Thread(target=produce, name="address-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "done":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():
            try:
                queue.get_nowait()
            except Empty:
                worker.join(0.05)


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
