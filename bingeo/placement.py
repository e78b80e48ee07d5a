"""Approximate positions for addresses the register gives without one, from their street.

An unlocated address is placed, in this order of preference:

1. ``interpolated``: between the nearest lower and higher located house numbers on the same
   side (same parity) of the same street, linearly in the house number (12A counts as a bit
   more than 12); a located record with the same number gives its own position. A street side
   with no located number at all is interpolated from the numbers of both sides instead.
2. ``nearest_number``: the position of the nearest located number on that side (or, as above,
   of the street) when located numbers lie on one side of it only: no extrapolation, which
   would run off the end of the street.
3. ``street_centroid``: the street's located address nearest the mean of its located
   addresses (a point on the street, where a plain mean of a bent street lies beside it), for
   an address no number places: its own has no digits ("A7"), or no located one of its street
   has.
4. Nothing, when the street has no located address.

A street is its name within one postcode and municipality. Everything works on arrays sorted
once (``O(n log n)``), with no loop over streets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd


class PositionMethod(StrEnum):
    """How an approximate position was found (a surveyed position has no method)."""

    interpolated = "interpolated"
    nearest_number = "nearest_number"
    street_centroid = "street_centroid"


METHODS = tuple(PositionMethod)
NO_METHOD = -1  # in ``Placement.method``: not placed (located already, or nothing to go by)
# A letter after the number (12A, 12B) places the address this far past the number per letter.
SUFFIX_STEP = 1 / 32
_LETTER_RANKS = {"": 0, **{chr(ord("A") + i): i + 1 for i in range(26)}}


@dataclass(frozen=True)
class Placement:
    """Approximate positions of the records that had none: ``x``, ``y`` (NaN where not
    placed, and for the located records) and ``method`` (index into ``METHODS``, or
    ``NO_METHOD``)."""

    x: np.ndarray
    y: np.ndarray
    method: np.ndarray

    def methods(self) -> np.ndarray:
        """The method of each record as text (None where not placed)."""
        names = np.array([*(m.value for m in METHODS), None], dtype=object)
        return names[self.method]

    def counts(self) -> dict[str, int]:
        """How many records each method placed."""
        found = np.bincount(self.method[self.method >= 0], minlength=len(METHODS))
        return {m.value: int(n) for m, n in zip(METHODS, found, strict=True)}


def place_addresses(records: pd.DataFrame) -> Placement:
    """:func:`place` for address records with the columns street, postcode, nis_code,
    municipality, house_number, x and y (NaN where unlocated), as an import stores them."""
    keys = street_keys(
        records["street"], records["postcode"], records["nis_code"], records["municipality"]
    )
    numbers, parity = house_number_values(records["house_number"])
    x, y = records["x"].to_numpy(dtype=float), records["y"].to_numpy(dtype=float)
    return place(keys, numbers, parity, x, y)


def street_keys(
    street: object, postcode: object, nis_code: object, municipality: object
) -> np.ndarray:
    """One key (an integer) per record naming its street: the name within its postcode and
    municipality (NIS code, else name); missing parts count as empty."""
    town = _series(nis_code).fillna(_series(municipality))
    key = np.zeros(len(town), dtype=np.int64)
    # Each part hashed once and the codes combined: no string is built per record. The
    # product of the numbers of distinct values stays far below 2**63 for any register.
    for values in (_series(street), _series(postcode), town):
        codes, distinct = pd.factorize(values.fillna(""))
        key = key * len(distinct) + codes
    return key


def house_number_values(numbers: object) -> tuple[np.ndarray, np.ndarray]:
    """(value, parity) of house numbers as text: 12 -> 12.0, 12A -> 12 + 1/32, 12-14 -> 12.0.

    The value is NaN (and the parity -1) where the text does not start with digits ("A7",
    empty, None): such a number cannot be placed between others.
    """
    # A register repeats a few thousand numbers: each distinct one is read once.
    codes, distinct = pd.factorize(_series(numbers), use_na_sentinel=True)
    text = pd.Series(distinct, dtype=object).astype("string")
    parts = text.str.extract(r"^\s*0*(\d{1,9})\s*([A-Za-z]?)", expand=True)
    digits = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    rank = parts[1].fillna("").str.upper().map(_LETTER_RANKS).to_numpy(dtype=float)
    value = np.append(digits + rank * SUFFIX_STEP, np.nan)[codes]  # code -1 (missing): NaN
    parity = np.where(np.isfinite(value), np.nan_to_num(np.floor(value)) % 2, -1)
    return value, parity.astype(np.int64)


def place(
    streets: object,
    numbers: np.ndarray,
    parity: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> Placement:
    """Approximate positions of the records with NaN ``x``/``y`` from the located records of
    their street (see the module's docstring for the rules).

    ``streets`` identifies each record's street (any values, e.g. from :func:`street_keys`),
    ``numbers`` and ``parity`` come from :func:`house_number_values`.
    Inputs are not changed; the located records get NaN and ``NO_METHOD``.
    """
    street = pd.factorize(np.asarray(streets), use_na_sentinel=False)[0]
    numbers = np.asarray(numbers, dtype=float)
    parity = np.asarray(parity, dtype=np.int64)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(street)
    if not (len(numbers) == len(parity) == len(x) == len(y) == n):
        raise ValueError("streets, numbers, parity, x and y must have the same length")
    located = np.isfinite(x) & np.isfinite(y)
    out_x, out_y = np.full(n, np.nan), np.full(n, np.nan)
    method = np.full(n, NO_METHOD, dtype=np.int64)
    numbered = np.isfinite(numbers)

    # Same side first; then, for a side without any located number, both sides together.
    side = street * 2 + np.maximum(parity, 0)
    side_located = np.bincount(side[located & numbered], minlength=2 * (street.max(initial=0) + 1))
    for group, todo in (
        (side, ~located & numbered),
        (street, ~located & numbered & (side_located[side] == 0)),
    ):
        px, py, how = _along(group, numbers, x, y, located & numbered, todo)
        done = how != NO_METHOD
        out_x[done], out_y[done], method[done] = px[done], py[done], how[done]

    rest = ~located & (method == NO_METHOD)
    if rest.any() and located.any():
        wanted_street = np.zeros(int(street.max()) + 1, dtype=bool)
        wanted_street[street[rest]] = True
        cx, cy = _street_points(street, x, y, located & wanted_street[street])
        out_x[rest], out_y[rest] = cx[street[rest]], cy[street[rest]]
        placed = rest & np.isfinite(out_x)
        method[placed] = METHODS.index(PositionMethod.street_centroid)
    return Placement(out_x, out_y, method)


def _series(values: object) -> pd.Series:
    """``values`` as a series; a series as it is (converting Arrow-backed text costs more than
    hashing it)."""
    return values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)


def _along(
    group: np.ndarray,
    numbers: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    known: np.ndarray,
    todo: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the ``todo`` records, a position between the nearest ``known`` numbers of their
    group below and above (or the nearest one when there is one side only)."""
    n = len(group)
    px, py = np.full(n, np.nan), np.full(n, np.nan)
    how = np.full(n, NO_METHOD, dtype=np.int64)
    if not todo.any() or not known.any():
        return px, py, how
    # Only the groups with something to place are sorted.
    wanted_group = np.zeros(int(group.max()) + 1, dtype=bool)
    wanted_group[group[todo]] = True
    known = known & wanted_group[group]
    chosen = np.flatnonzero(known | todo)
    # Known records before unknown ones of equal number: the known one is then the lower
    # neighbour, at distance 0.
    order = chosen[np.lexsort((~known[chosen], numbers[chosen], group[chosen]))]
    g, v, k = group[order], numbers[order], known[order]
    at = np.arange(len(order))
    last = np.maximum.accumulate(np.where(k, at, -1))
    following = np.minimum.accumulate(np.where(k, at, len(order))[::-1])[::-1]
    has_low = (last >= 0) & (g[np.maximum(last, 0)] == g)
    has_high = (following < len(order)) & (g[np.minimum(following, len(order) - 1)] == g)
    low, high = order[np.maximum(last, 0)], order[np.minimum(following, len(order) - 1)]
    wanted = ~k
    both = wanted & has_low & has_high
    span = numbers[high[both]] - numbers[low[both]]
    share = np.divide(
        v[both] - numbers[low[both]], span, out=np.zeros(int(both.sum())), where=span > 0
    )
    target = order[both]
    px[target] = x[low[both]] + share * (x[high[both]] - x[low[both]])
    py[target] = y[low[both]] + share * (y[high[both]] - y[low[both]])
    how[target] = METHODS.index(PositionMethod.interpolated)
    for side, neighbour in ((has_low & ~has_high, low), (has_high & ~has_low, high)):
        single = wanted & side
        target = order[single]
        px[target], py[target] = x[neighbour[single]], y[neighbour[single]]
        # The same number found on one side is the address's own place, not a neighbour's.
        exact = numbers[neighbour[single]] == v[single]
        how[target] = np.where(
            exact,
            METHODS.index(PositionMethod.interpolated),
            METHODS.index(PositionMethod.nearest_number),
        )
    return px, py, how


def _street_points(
    street: np.ndarray, x: np.ndarray, y: np.ndarray, located: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per street code, the located address nearest the mean of the street's located
    addresses (NaN for a street with none)."""
    size = int(street.max(initial=-1)) + 1
    cx, cy = np.full(size, np.nan), np.full(size, np.nan)
    s, lx, ly = street[located], x[located], y[located]
    if not len(s):
        return cx, cy
    count = np.bincount(s, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = np.bincount(s, weights=lx, minlength=size) / count
        mean_y = np.bincount(s, weights=ly, minlength=size) / count
    distance = np.hypot(lx - mean_x[s], ly - mean_y[s])
    order = np.lexsort((distance, s))
    first = order[np.r_[True, s[order][1:] != s[order][:-1]]]
    cx[s[first]], cy[s[first]] = lx[first], ly[first]
    return cx, cy
