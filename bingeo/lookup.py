"""Free-text Belgian addresses: normalisation, parsing and scoring (pure, no database).

One normalisation serves both sides: street names stored in ``streets.name_norm`` and the street
words of a query go through :func:`normalise_street`, so abbreviations, accents and case cannot
make them differ.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from difflib import SequenceMatcher

# Abbreviations that stand alone as a word ("Kerkstr." is handled by SUFFIXES).
WORD_ABBREVIATIONS = {
    "str": "straat",
    "ln": "laan",
    "stwg": "steenweg",
    "stw": "steenweg",
    "stg": "steenweg",
    "pln": "plein",
    "dr": "dreef",
    "kon": "koning",
    "olv": "onze lieve vrouw",
    "av": "avenue",
    "ave": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "blvd": "boulevard",
    "boul": "boulevard",
    "ch": "chaussee",
    "chee": "chaussee",
    "chss": "chaussee",
    "sq": "square",
    "imp": "impasse",
}
# Abbreviations whose expansion depends on the language of the name.
AMBIGUOUS = {
    "st": ("sint", "saint"),
    "ste": ("sint", "sainte"),
    "pl": ("plein", "place"),
}
# Dutch street words glued to the end of a compound ("albertln" -> "albertlaan").
SUFFIXES = (("stwg", "steenweg"), ("stw", "steenweg"), ("str", "straat"), ("ln", "laan"))
_FRENCH = "rue avenue chaussee boulevard chemin du des la le les clos square allee impasse quai "
_FRENCH += "route sentier rond point cours saint sainte place dreve av bd ch chee"
FRENCH_WORDS = frozenset(_FRENCH.split())
BOX_MARKERS = frozenset({"bus", "bte", "boite", "box", "bt", "b"})
NUMBER_MARKERS = frozenset({"nr", "no", "n", "num", "numero", "huisnummer", "nummer"})
NUMBER_SUFFIXES = frozenset({"bis", "ter", "quater"})
_LETTERS = {"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "ł": "l", "đ": "d"}
_TOKEN = re.compile(r"[a-z0-9]+|[,/]")
_NUMBER = re.compile(r"\d{1,5}[a-z]{0,3}")
_LETTER_NUMBER = re.compile(r"[a-z]\d{1,4}")
_POSTCODE = re.compile(r"[1-9]\d{3}")


@dataclass(frozen=True)
class ParsedAddress:
    """What a free-text address says; every part may be missing."""

    street: str = ""  # normalised street words (abbreviations expanded)
    house_number: str | None = None  # normalised: "12", "12a", "12bis"
    box: str | None = None  # normalised: "3", "a"
    postcode: str | None = None
    municipality: str | None = None  # normalised words
    # True when the municipality was recognised among trailing words without a comma or
    # postcode in front of it; the caller may retry without that guess.
    municipality_guessed: bool = False


@dataclass(frozen=True)
class Score:
    """How well one address answers a parsed query; ``confidence`` is in 0..1."""

    confidence: float
    street: float
    number_exact: bool
    parts: dict[str, float] = field(default_factory=dict)


def fold(text: str) -> str:
    """Lower case without accents; letters outside ASCII spelled out; other marks kept."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return "".join(_LETTERS.get(c, c) for c in text)


def tokens(text: str) -> list[str]:
    """Words, numbers, commas and slashes of ``text`` after :func:`fold`."""
    return _TOKEN.findall(fold(text))


def normalise_street(name: str) -> str:
    """A street name in its comparable form: "Koning Albertln" -> "koning albertlaan"."""
    return expand_street_words([t for t in tokens(name) if t not in {",", "/"}])


def expand_street_words(words: list[str]) -> str:
    """Join street words with abbreviations expanded (French or Dutch by context)."""
    french = any(w in FRENCH_WORDS for w in words)
    out: list[str] = []
    for i, word in enumerate(words):
        if word in WORD_ABBREVIATIONS:
            out.append(WORD_ABBREVIATIONS[word])
        elif word in AMBIGUOUS:
            # French names start with the street word ("Pl. Flagey"), Dutch ones end with it.
            first_place = word == "pl" and i == 0 and len(words) > 1
            out.append(AMBIGUOUS[word][1 if french or first_place else 0])
        else:
            out.append(_expand_suffix(word))
    return " ".join(out)


def normalise_number(number: str | None) -> str | None:
    """A house number or box in comparable form: "12 A" -> "12a", "12 bis" -> "12bis"."""
    if number is None:
        return None
    value = "".join(t for t in tokens(number) if t not in {",", "/"})
    return value or None


def normalise_municipality(name: str | None) -> str:
    """A municipality name in comparable form ("Sint-Niklaas" -> "sint niklaas")."""
    return " ".join(t for t in tokens(name or "") if t not in {",", "/"})


def compact(text: str) -> str:
    """A normalised name without spaces, so "lange lostraat" equals "langelostraat"."""
    return text.replace(" ", "")


def parse_address(text: str, *, municipalities: Collection[str] = ()) -> ParsedAddress:
    """Split a free-text address into street, house number, box, postcode and municipality.

    ``municipalities`` are known municipality names (normalised, see
    :func:`normalise_municipality`); trailing words equal to one of them are taken as the
    municipality when no postcode or comma marks it.
    """
    items = tokens(text)
    items = _drop_number_markers(items)
    postcode_at = _postcode_index(items)
    municipality_words: list[str] = []
    head = items
    postcode = None
    if postcode_at is not None:
        postcode = items[postcode_at]
        municipality_words = [t for t in items[postcode_at + 1 :] if t not in {",", "/"}]
        head = items[:postcode_at]
    elif "," in items:
        # "Kerkstraat 12, Gent": a last segment of words only is the municipality.
        last_comma = len(items) - 1 - items[::-1].index(",")
        tail = items[last_comma + 1 :]
        before = [t for t in items[:last_comma] if t != ","]
        if tail and before and all(t.isalpha() for t in tail):
            municipality_words, head = tail, items[:last_comma]
    head = [t for t in head if t != ","]
    head, box = _take_box(head)
    words, number, box_after = _take_number(head)
    box = box or box_after
    guessed = False
    if not municipality_words and municipalities:
        words, municipality_words = _split_trailing_municipality(words, municipalities)
        guessed = bool(municipality_words)
    return ParsedAddress(
        street=expand_street_words(words),
        house_number=number,
        box=box,
        postcode=postcode,
        municipality=" ".join(municipality_words) or None,
        municipality_guessed=guessed,
    )


def street_similarity(query: str, name_norm: str) -> float:
    """Similarity 0..1 of two normalised street names, insensitive to spaces."""
    a, b = compact(query), compact(name_norm)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def score_address(
    parsed: ParsedAddress,
    *,
    street_norm: str,
    house_number: str | None,
    box: str | None,
    postcode: str | None,
) -> Score:
    """Confidence that an address (its normalised street name and facts) is the one meant."""
    street = street_similarity(parsed.street, street_norm) if parsed.street else 0.0
    number = normalise_number(house_number)
    exact = parsed.house_number is not None and number == parsed.house_number
    if parsed.house_number is None:
        number_part = 0.6  # a street without a number is only half an address
    elif exact:
        number_part = 1.0
    elif number and _digits(number) == _digits(parsed.house_number):
        number_part = 0.7  # 12 for 12A, or the reverse
    else:
        number_part = 0.3
    postcode_part = 1.0 if parsed.postcode in (None, postcode) else 0.9
    wanted_box = parsed.box
    have_box = normalise_number(box)
    if wanted_box is None:
        box_part = 1.0 if have_box is None else 0.98  # prefer the building over one flat
    elif wanted_box == have_box:
        box_part = 1.0
    else:
        box_part = 0.95 if have_box is None else 0.9
    confidence = street * street * number_part * postcode_part * box_part
    parts = {
        "street": round(street, 3),
        "number": number_part,
        "postcode": postcode_part,
        "box": box_part,
    }
    return Score(confidence=round(confidence, 4), street=street, number_exact=exact, parts=parts)


def number_distance(a: str | None, b: str | None) -> float:
    """How far apart two house numbers are on a street (for "other numbers" suggestions)."""
    da, db = _digits(a), _digits(b)
    if da is None or db is None:
        return float("inf")
    return abs(da - db) + (0 if (a or "") == (b or "") else 0.5)


def _digits(number: str | None) -> int | None:
    match = re.search(r"\d+", number or "")
    return int(match.group()) if match else None


def _expand_suffix(word: str) -> str:
    for short, full in SUFFIXES:
        if len(word) > len(short) + 2 and word.endswith(short) and word[: -len(short)].isalpha():
            return word[: -len(short)] + full
    return word


def _drop_number_markers(items: list[str]) -> list[str]:
    out = []
    for i, item in enumerate(items):
        following = items[i + 1] if i + 1 < len(items) else ""
        if item in NUMBER_MARKERS and _NUMBER.fullmatch(following) and out:
            continue
        out.append(item)
    return out


def _postcode_index(items: list[str]) -> int | None:
    numbers = [
        i for i, t in enumerate(items) if _NUMBER.fullmatch(t) or _LETTER_NUMBER.fullmatch(t)
    ]
    for i in reversed(numbers):
        if not _POSTCODE.fullmatch(items[i]):
            continue
        followed_by_word = i + 1 < len(items) and items[i + 1].isalpha()
        after_comma = i > 0 and items[i - 1] == ","
        other_number = any(j != i for j in numbers)
        if i > 0 and (followed_by_word or after_comma or other_number):
            return i
    return None


def _take_box(items: list[str]) -> tuple[list[str], str | None]:
    """Remove "bus 3", "bte 3", "boite 3", "/3", "b3" (after a number) from ``items``."""
    for i, item in enumerate(items):
        nxt = items[i + 1] if i + 1 < len(items) else None
        prev = items[i - 1] if i > 0 else None
        prev_is_number = prev is not None and _NUMBER.fullmatch(prev) is not None
        if item == "/" and nxt is not None and prev_is_number:
            return items[:i] + items[i + 2 :], nxt
        # "12 b" alone is house number 12B; "12 b 3" is box 3.
        if (
            item in BOX_MARKERS
            and nxt is not None
            and prev_is_number
            and (item != "b" or any(c.isdigit() for c in nxt))
        ):
            return items[:i] + items[i + 2 :], nxt
        match = re.fullmatch(r"(bus|bte|boite|box)(\w+)", item)
        if match and prev_is_number:
            return items[:i] + items[i + 1 :], match.group(2)
    return items, None


def _take_number(items: list[str]) -> tuple[list[str], str | None, str | None]:
    """Street words, house number (with "a"/"bis" suffix joined) and a box found after it."""
    if not items:
        return [], None, None
    if _NUMBER.fullmatch(items[0]) and len(items) > 1:
        at = 0
    else:
        at = None
        for i in range(len(items) - 1, 0, -1):
            token = items[i]
            last = i == len(items) - 1 or all(
                _NUMBER.fullmatch(t) or t in NUMBER_SUFFIXES or len(t) == 1 for t in items[i + 1 :]
            )
            if _NUMBER.fullmatch(token) or (_LETTER_NUMBER.fullmatch(token) and last):
                at = i
                break
        if at is None:
            return items, None, None
    number = items[at]
    rest = items[at + 1 :]
    box = None
    if number.isdigit() and rest and (rest[0] in NUMBER_SUFFIXES or _is_letter(rest[0], at, rest)):
        number += rest[0]
        rest = rest[1:]
    if at > 0 and rest and _NUMBER.fullmatch(rest[0]):
        box, rest = rest[0], rest[1:]  # "Kerkstraat 12 3": a bare second number is the box
    words = items[:at] + rest
    return words, number, box


def _is_letter(token: str, at: int, rest: list[str]) -> bool:
    # "Kerkstraat 12 a" is 12A; so is "12 a Kerkstraat" (no street name starts with "a").
    return len(token) == 1 and token.isalpha() and (at > 0 or len(rest) > 1)


def _split_trailing_municipality(
    words: list[str], municipalities: Collection[str]
) -> tuple[list[str], list[str]]:
    for size in range(min(4, len(words) - 1), 0, -1):
        tail = " ".join(words[-size:])
        if tail in municipalities:
            return words[:-size], words[-size:]
    return words, []
