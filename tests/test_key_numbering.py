"""Numbering repeated record keys across the chunks of one address file (no database)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from bingeo.addresses import AddressChunk, KeyNumbering


def _chunk(keys: list[str], hashes: list[int], *, derived: bool) -> AddressChunk:
    table = pa.table(
        {
            "source_key": pa.array(keys),
            "derived": pa.array([derived] * len(keys)),
            "key_hash": pa.array(hashes, type=pa.int64()),
        }
    )
    return AddressChunk(table=table, first_row=0)


def _by_hand(keys: list[str]) -> list[int]:
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(seen[key])
    return out


def test_occurrences_counted_over_chunks_in_file_order() -> None:
    rng = np.random.default_rng(7)
    keys = [f"h:{value}" for value in rng.integers(0, 400, 3_000)]
    numbering = KeyNumbering()
    found: list[int] = []
    for start in range(0, len(keys), 250):
        part = keys[start : start + 250]
        hashes = [int(k[2:]) * 7919 for k in part]
        found += numbering.number(_chunk(part, hashes, derived=True)).tolist()
    assert found == _by_hand(keys)
    assert max(found) > 3  # the data really repeats across chunks


def test_source_ids_that_share_a_hash_are_told_apart() -> None:
    # Four ids, two hash values: "a"/"b" and "c"/"d" collide; their first rows lie in
    # earlier chunks than their repeats.
    chunks = [["a", "x"], ["b", "c"], ["a", "d", "b"], ["c", "a", "d"]]
    hash_of = {"a": 1, "b": 1, "c": 2, "d": 2, "x": 3}
    numbering = KeyNumbering()
    found: list[int] = []
    for part in chunks:
        hashes = [hash_of[k] for k in part]
        found += numbering.number(_chunk(part, hashes, derived=False)).tolist()
    assert found == _by_hand([k for part in chunks for k in part])
