"""Use cases of the free-text address lookup (issue 4, item 1)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine

from bingeo.access import Actor
from bingeo.db import lookup as repo
from bingeo.errors import InvalidInput
from bingeo.lookup import (
    ParsedAddress,
    Score,
    normalise_municipality,
    normalise_street,
    number_distance,
    parse_address,
    score_address,
    street_similarity,
)
from bingeo.services.matching import CoveringNetwork, networks_of_addresses

MAX_QUERY_CHARS = 300
STREETS_RANKED = 12  # candidates taken from PostgreSQL before rescoring in Python
STREETS_KEPT = 5
# A street is the one meant when it is this similar, or nearly so and clearly ahead of the next.
STREET_SURE = 0.75
STREET_LIKELY = 0.6
STREET_MARGIN = 0.1
# The answer's street may trail the most similar street by this much (a typo between two).
STREET_TIE = 0.05
# Below this similarity within the named municipality, streets elsewhere are tried too.
STREET_RETRY_NATIONAL = 0.5
PLACES_TTL_S = 30.0


@dataclass(frozen=True)
class AddressMatch:
    """An address offered as an answer, with its confidence and why it is offered."""

    id: int
    street: str
    house_number: str | None
    box: str | None
    postcode: str | None
    municipality: str | None
    nis_code: str | None
    lon: float | None
    lat: float | None
    confidence: float
    reason: str  # "match", "same_street_other_number", "similar_street"
    position_method: str | None = None  # how an approximate position was found
    networks: list[CoveringNetwork] | None = None  # covering networks, when asked for

    @property
    def approximate(self) -> bool:
        """Whether the position is an approximate one (``bingeo.placement``)."""
        return self.position_method is not None

    def as_dict(self) -> dict[str, Any]:
        """Public address facts; the position as a GeoJSON Point in EPSG:4326."""
        position = (
            {"type": "Point", "coordinates": [round(self.lon, 7), round(self.lat, 7)]}
            if self.lon is not None and self.lat is not None
            else None
        )
        answer: dict[str, Any] = {
            "id": self.id,
            "street": self.street,
            "house_number": self.house_number,
            "box": self.box,
            "postcode": self.postcode,
            "municipality": self.municipality,
            "nis_code": self.nis_code,
            "position": position,
            "approximate": self.approximate,
            "position_method": self.position_method,
            "confidence": self.confidence,
            "reason": self.reason,
        }
        if self.networks is not None:
            answer["networks"] = [n.as_dict() for n in self.networks]
        return answer


@dataclass(frozen=True)
class LookupResult:
    """The answer to one free-text address: the best match or a clear not-found."""

    query: str
    parsed: ParsedAddress
    found: bool
    best: AddressMatch | None
    alternatives: list[AddressMatch] = field(default_factory=list)
    message: str = ""

    @property
    def confidence(self) -> float:
        """Confidence of the best match, 0 when not found."""
        return self.best.confidence if self.best is not None else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data (CLI ``--json`` and the API)."""
        parsed = self.parsed
        return {
            "query": self.query,
            "found": self.found,
            "confidence": self.confidence,
            "best": self.best.as_dict() if self.best else None,
            "alternatives": [a.as_dict() for a in self.alternatives],
            "message": self.message,
            "understood": {
                "street": parsed.street or None,
                "house_number": parsed.house_number,
                "box": parsed.box,
                "postcode": parsed.postcode,
                "municipality": parsed.municipality,
            },
        }


def lookup_address(engine: Engine, text: str, *, limit: int = 5) -> LookupResult:
    """Resolve a free-text Belgian address to the best stored address and its alternatives."""
    query = " ".join((text or "").split())
    if not query:
        raise InvalidInput("the address to look up is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"the address is longer than {MAX_QUERY_CHARS} characters")
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    # Read-only statements in autocommit: no BEGIN/ROLLBACK round trips per lookup.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        places = _places(engine, connection)
        parsed = parse_address(query, municipalities=places.names)
        result = _resolve(connection, places, query, parsed, limit)
        if parsed.municipality_guessed and not result.found:
            # "12 steenweg op gent": the trailing name may belong to the street.
            again = _resolve(connection, places, query, parse_address(query), limit)
            if again.found or again.confidence > result.confidence:
                result = again
    return result


def search_addresses(
    engine: Engine, actor: Actor, text: str, *, limit: int = 5, language: str = "nl"
) -> LookupResult:
    """:func:`lookup_address` with the networks covering each answer, as
    ``bingeo.services.matching.networks_covering`` shows them to ``actor``."""
    result = lookup_address(engine, text, limit=limit)
    answers = [m for m in (result.best, *result.alternatives) if m is not None]
    if not answers:
        return result
    staff = actor.principal.role is not None
    with engine.connect() as connection:
        networks = networks_of_addresses(
            connection, [m.id for m in answers], staff=staff, language=language
        )

    def covered(match: AddressMatch) -> AddressMatch:
        return replace(match, networks=networks[match.id])

    return replace(
        result,
        best=covered(result.best) if result.best is not None else None,
        alternatives=[covered(m) for m in result.alternatives],
    )


def refresh_lookup(engine: Engine) -> dict[str, int]:
    """Normalise street names added since the last refresh and refresh the postcodes."""
    with engine.begin() as connection:
        return refresh_lookup_tables(connection)


def refresh_lookup_tables(connection: Connection, places: pa.Table | None = None) -> dict[str, int]:
    """:func:`refresh_lookup` inside a transaction of the caller (e.g. an import, which gives
    the postcode ``places`` of its rows: see ``bingeo.db.lookup.refresh_postcodes``)."""
    streets = repo.normalise_new_streets(connection, normalise_street)
    postcodes = repo.refresh_postcodes(connection, places)
    repo.analyze_streets(connection)
    _PLACES.clear()
    return {"streets_normalised": streets, "postcodes": postcodes}


# internals -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Places:
    by_postcode: dict[str, frozenset[str]]
    by_name: dict[str, frozenset[str]]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.by_name)


_PLACES: dict[str, tuple[float, _Places]] = {}
_PLACES_LOCK = threading.Lock()


def _places(engine: Engine, connection: Connection) -> _Places:
    # Postcodes and municipality names are few (about 1,200 nationally) and change with imports
    # only: kept for a short while instead of being read for every lookup.
    key = str(engine.url)
    now = time.monotonic()
    with _PLACES_LOCK:
        cached = _PLACES.get(key)
        if cached is not None and now - cached[0] < PLACES_TTL_S:
            return cached[1]
    by_postcode: dict[str, set[str]] = {}
    by_name: dict[str, set[str]] = {}
    for postcode, nis_code, name in repo.places(connection):
        if postcode:
            by_postcode.setdefault(postcode, set()).add(nis_code)
        if name:
            by_name.setdefault(normalise_municipality(name), set()).add(nis_code)
    places = _Places(
        by_postcode={k: frozenset(v) for k, v in by_postcode.items()},
        by_name={k: frozenset(v) for k, v in by_name.items() if k},
    )
    with _PLACES_LOCK:
        _PLACES[key] = (now, places)
    return places


def _resolve(
    connection: Connection, places: _Places, query: str, parsed: ParsedAddress, limit: int
) -> LookupResult:
    if not parsed.street:
        return LookupResult(query, parsed, False, None, [], "no street name in the address")
    nis_codes = _nis_filter(places, parsed)
    streets = _rank_streets(connection, parsed, nis_codes)
    if nis_codes is not None and (not streets or streets[0][0] < STREET_RETRY_NATIONAL):
        # A wrong postcode or municipality should not hide the street.
        streets = sorted({*streets, *_rank_streets(connection, parsed, None)}, key=_street_order)[
            :STREETS_KEPT
        ]
    if not streets:
        return LookupResult(query, parsed, False, None, [], "no street resembles the address")
    sure = _street_is_sure(streets)
    rows = repo.addresses_on_streets(
        connection,
        [(c.nis_code, c.name) for _, c in streets],
        house_number=parsed.house_number,
    )
    norms = {(c.nis_code, c.name): c.name_norm for _, c in streets}
    matches = sorted(
        (_match(r, _score(parsed, r, norms), "match") for r in rows),
        key=lambda m: (-m.confidence, m.id),
    )
    top = streets[0][0]
    scores = {(c.nis_code, c.name): s for s, c in streets}
    answers = [
        m for m in matches if sure.get(_street_of(m)) and scores[_street_of(m)] >= top - STREET_TIE
    ]
    if parsed.house_number is not None and answers:
        best = answers[0]
        others = [m for m in matches if m.id != best.id]
        return LookupResult(query, parsed, True, best, others[: limit - 1], "")
    return _not_found(connection, query, parsed, streets, matches, sure, limit)


def _not_found(
    connection: Connection,
    query: str,
    parsed: ParsedAddress,
    streets: list[tuple[float, repo.StreetCandidate]],
    matches: list[AddressMatch],
    sure: dict[tuple[str, str], bool],
    limit: int,
) -> LookupResult:
    norms = {(c.nis_code, c.name): c.name_norm for _, c in streets}
    candidates: list[AddressMatch] = []
    seen: set[int] = set()
    best_street = streets[0][1]
    best_key = (best_street.nis_code, best_street.name)
    if sure.get(best_key):
        rows = repo.nearest_numbers(connection, best_key, parsed.house_number, limit=limit)
        rows.sort(key=lambda r: number_distance(r.house_number, parsed.house_number))
        for row in rows:
            candidates.append(_match(row, _score(parsed, row, norms), "same_street_other_number"))
            seen.add(row.id)
    for match in matches:
        if match.id not in seen:
            candidates.append(
                _match_from(match, "similar_street")
                if _street_of(match) != best_key or not sure.get(best_key)
                else match
            )
            seen.add(match.id)
    covered = {_street_of(c) for c in candidates}
    for _, street in streets:
        key = (street.nis_code, street.name)
        if key in covered or len(candidates) >= limit * 2:
            continue
        for row in repo.nearest_numbers(connection, key, parsed.house_number, limit=1):
            if row.id not in seen:
                candidates.append(_match(row, _score(parsed, row, norms), "similar_street"))
                seen.add(row.id)
    candidates.sort(key=lambda m: (m.reason != "same_street_other_number", -m.confidence, m.id))
    if parsed.house_number is None:
        message = f"no house number in '{query}'; streets and numbers that exist are listed"
    elif sure.get(best_key):
        message = (
            f"no address {parsed.house_number} in {best_street.name}; "
            "other numbers of that street and similar streets are listed"
        )
    else:
        message = f"no street matches '{parsed.street}'; similar street names are listed"
    return LookupResult(query, parsed, False, None, candidates[:limit], message)


def _nis_filter(places: _Places, parsed: ParsedAddress) -> list[str] | None:
    codes: set[str] = set()
    if parsed.postcode and parsed.postcode in places.by_postcode:
        codes |= places.by_postcode[parsed.postcode]
    if parsed.municipality:
        codes |= places.by_name.get(parsed.municipality, frozenset())
    return sorted(codes) if codes else None


def _rank_streets(
    connection: Connection, parsed: ParsedAddress, nis_codes: list[str] | None
) -> list[tuple[float, repo.StreetCandidate]]:
    exact = repo.streets_named(connection, parsed.street, nis_codes=nis_codes)
    if exact and len(exact) <= STREETS_KEPT:
        return [(1.0, c) for c in exact]
    # Within known municipalities a typo is cheapest to find among names of about the same
    # length; the trigram preselection (``%``) catches partial names and runs nationally.
    order = (True, False) if nis_codes is not None else (False, True)
    ranked: list[tuple[float, repo.StreetCandidate]] = []
    for exhaustive in order:
        ranked = sorted(
            {*ranked, *_ranked(connection, parsed, nis_codes, exhaustive=exhaustive)},
            key=_street_order,
        )
        if ranked and ranked[0][0] >= STREET_SURE:
            break
    return ranked[:STREETS_KEPT]


def _ranked(
    connection: Connection, parsed: ParsedAddress, nis_codes: list[str] | None, *, exhaustive: bool
) -> list[tuple[float, repo.StreetCandidate]]:
    found = repo.candidate_streets(
        connection, parsed.street, nis_codes=nis_codes, limit=STREETS_RANKED, exhaustive=exhaustive
    )
    return sorted(
        ((street_similarity(parsed.street, c.name_norm), c) for c in found), key=_street_order
    )


def _street_order(item: tuple[float, repo.StreetCandidate]) -> tuple[float, float, str, str]:
    score, candidate = item
    return (-score, -candidate.similarity, candidate.nis_code, candidate.name)


def _street_is_sure(
    streets: list[tuple[float, repo.StreetCandidate]],
) -> dict[tuple[str, str], bool]:
    """Which candidate streets are close enough to the query to answer with."""
    sure: dict[tuple[str, str], bool] = {}
    for i, (score, street) in enumerate(streets):
        runner_up = max((s for j, (s, _) in enumerate(streets) if j != i), default=0.0)
        sure[(street.nis_code, street.name)] = score >= STREET_SURE or (
            score >= STREET_LIKELY and score - runner_up >= STREET_MARGIN
        )
    return sure


def _score(parsed: ParsedAddress, row: repo.AddressRow, norms: dict[tuple[str, str], str]) -> Score:
    return score_address(
        parsed,
        street_norm=norms.get((row.nis_code or "", row.street), normalise_street(row.street)),
        house_number=row.house_number,
        box=row.box,
        postcode=row.postcode,
    )


def _match(row: repo.AddressRow, score: Score, reason: str) -> AddressMatch:
    return AddressMatch(
        id=row.id,
        street=row.street,
        house_number=row.house_number,
        box=row.box,
        postcode=row.postcode,
        municipality=row.municipality,
        nis_code=row.nis_code,
        lon=row.lon,
        lat=row.lat,
        confidence=score.confidence,
        reason=reason,
        position_method=row.position_method,
    )


def _match_from(match: AddressMatch, reason: str) -> AddressMatch:
    return AddressMatch(**{**match.__dict__, "reason": reason})


def _street_of(match: AddressMatch) -> tuple[str, str]:
    return (match.nis_code or "", match.street)
