"""Free-text address lookup (issue 4, item 1) on real Gent and Bierbeek addresses.

Expected answers come from the source CSV files (and a small Brussels fixture written here),
never from the code under test.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from db_helpers import empty_tables
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from typer.testing import CliRunner

from api.app import create_app
from bingeo.cli import app as cli_app
from bingeo.db import lookup as lookup_repo
from bingeo.db.models import Postcode, Street
from bingeo.errors import InvalidInput
from bingeo.lookup import normalise_street, parse_address
from bingeo.services.imports import import_addresses
from bingeo.services.lookup import lookup_address, refresh_lookup
from bingeo.settings import Settings

SAMPLE_SIZE = 1000
SEED = 20240604
BRUSSELS = [
    # street, housenumber, box, postcode, municipality, nis_code, lat, lon
    ("Rue de la Loi", "16", "", "1000", "Bruxelles", "21004", "50.8466", "4.3662"),
    ("Rue de la Loi", "14", "", "1000", "Bruxelles", "21004", "50.8465", "4.3668"),
    ("Rue de la Loi", "18", "", "1000", "Bruxelles", "21004", "50.8464", "4.3674"),
    ("Avenue Louise", "54", "", "1050", "Ixelles", "21009", "50.8340", "4.3580"),
    ("Avenue Louise", "54", "3", "1050", "Ixelles", "21009", "50.8340", "4.3580"),
    ("Avenue Louise", "54", "4", "1050", "Ixelles", "21009", "50.8340", "4.3580"),
    ("Avenue Louise", "56", "", "1050", "Ixelles", "21009", "50.8338", "4.3582"),
    ("Chaussée de Wavre", "100", "", "1050", "Ixelles", "21009", "50.8370", "4.3720"),
    ("Chaussée de Wavre", "102", "2", "1050", "Ixelles", "21009", "50.8369", "4.3724"),
    ("Place Flagey", "18", "", "1050", "Ixelles", "21009", "50.8275", "4.3722"),
    ("Boulevard Anspach", "1", "", "1000", "Bruxelles", "21004", "50.8512", "4.3524"),
    ("Rue Saint-Lambert", "7", "", "1200", "Woluwe-Saint-Lambert", "21018", "50.8450", "4.4210"),
]


def gent_rows(real_data: Path) -> list[dict[str, str]]:
    """The located records of the Gent CRAB extract, as the file gives them."""
    with (real_data / "gent" / "gent_addresses_crab2014.csv").open(encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["lat"] and r["lon"]]


@pytest.fixture(scope="module")
def lookup_db(engine: Engine, real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """Gent, the four BIN municipalities and a few Brussels addresses, imported once."""
    empty_tables(engine)
    brussels = tmp_path_factory.mktemp("brussels") / "brussels.csv"
    with brussels.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["street", "housenumber", "box", "postcode", "municipality", "nis_code", "lat", "lon"]
        )
        writer.writerows(BRUSSELS)
    import_addresses(engine, real_data / "gent" / "gent_addresses_crab2014.csv")
    import_addresses(
        engine,
        real_data / "bierbeek_bin" / "addresses_crab_bin_municipalities.csv",
        skip_invalid=True,
    )
    import_addresses(engine, brussels)
    return engine


# pure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("Koning Albertln", "Koning Albertlaan"),
        ("kerkstr.", "Kerkstraat"),
        ("Brusselsestwg", "Brusselsesteenweg"),
        ("Brusselse stwg.", "Brusselse Steenweg"),
        ("av. louise", "Avenue Louise"),
        ("AVENUE LOUISE", "Avenue Louise"),
        ("bd anspach", "Boulevard Anspach"),
        ("chée de wavre", "Chaussée de Wavre"),
        ("Pl. Flagey", "Place Flagey"),
        ("Sint-Pieters pl.", "Sint-Pieters Plein"),
        ("St-Pietersplein", "Sint-Pietersplein"),
        ("rue st-lambert", "Rue Saint-Lambert"),
        ("Helene Dutrieulaan", "Hélène Dutrieulaan"),
    ],
)
def test_written_forms_normalise_like_the_register(written: str, stored: str) -> None:
    assert normalise_street(written) == normalise_street(stored)


@pytest.mark.parametrize(
    ("text", "street", "number", "box", "postcode", "municipality"),
    [
        ("Koning Albertlaan 12 bus 3, 3360 Bierbeek", "koning albertlaan", "12", "3", "3360",
         "bierbeek"),
        ("12 koning albertln bierbeek", "koning albertlaan", "12", None, None, "bierbeek"),
        ("Rue de la Loi 16 1000 Bruxelles", "rue de la loi", "16", None, "1000", "bruxelles"),
        ("av. louise 54 bte 3", "avenue louise", "54", "3", None, None),
        ("Avenue Louise 54 boîte 4", "avenue louise", "54", "4", None, None),
        ("Kerkstraat 12A, 9000 Gent", "kerkstraat", "12a", None, "9000", "gent"),
        ("Kerkstraat 12 bis", "kerkstraat", "12bis", None, None, None),
        ("Kerkstraat 12 b", "kerkstraat", "12b", None, None, None),
        ("Kerkstraat 12/3", "kerkstraat", "12", "3", None, None),
        ("Kerkstraat nr. 12 b 3", "kerkstraat", "12", "3", None, None),
        ("Kerkstraat 12, Gent", "kerkstraat", "12", None, None, "gent"),
        ("'t Stuk 2D 9000", "t stuk", "2d", None, "9000", None),
        ("Rue du 11 Novembre 5, 1000 Bruxelles", "rue du 11 novembre", "5", None, "1000",
         "bruxelles"),
    ],
)  # fmt: skip
def test_parse_free_text(
    text: str,
    street: str,
    number: str | None,
    box: str | None,
    postcode: str | None,
    municipality: str | None,
) -> None:
    parsed = parse_address(text, municipalities={"bierbeek", "gent", "bruxelles"})
    assert (parsed.street, parsed.house_number, parsed.box) == (street, number, box)
    assert (parsed.postcode, parsed.municipality) == (postcode, municipality)


# database --------------------------------------------------------------------------------------


def test_import_fills_the_lookup_tables(lookup_db: Engine, real_data: Path) -> None:
    with lookup_db.connect() as connection:
        missing = connection.execute(
            select(func.count()).select_from(Street).where(Street.name_norm.is_(None))
        ).scalar_one()
        postcodes = set(connection.execute(select(Postcode.postcode, Postcode.nis_code)).all())
    assert missing == 0
    gent = {(r["postcode"], r["nis_code"]) for r in gent_rows(real_data)}
    assert gent <= postcodes
    assert {("3360", "24011"), ("1000", "21004"), ("1050", "21009")} <= postcodes
    assert refresh_lookup(lookup_db)["streets_normalised"] == 0  # nothing new since the import
    # The imports added the postcodes of their own rows: the same as reading every address.
    places = select(Postcode.postcode, Postcode.nis_code, Postcode.municipality)
    with lookup_db.connect() as connection:  # rolled back at the end
        imported = set(connection.execute(places).all())
        connection.execute(delete(Postcode))
        lookup_repo.refresh_postcodes(connection)
        assert set(connection.execute(places).all()) == imported


def _variants(row: dict[str, str], i: int) -> str:
    street, number, postcode = row["street"], row["housenumber"], row["postcode"]
    return [
        f"{street} {number}, {postcode} Gent",
        f"{street} {number}, {postcode} Gent".lower(),
        f"{number} {street}, {postcode} Gent",
        f"{street} {number} {postcode}",
    ][i % 4]


def _typo(name: str, rng: random.Random) -> str:
    positions = [i for i, c in enumerate(name) if c.isascii() and c.isalpha()]
    i = rng.choice(positions)
    old = name[i].lower()
    new = rng.choice([c for c in "abcdefghijklmnopqrstuvwxyz" if c != old])
    return name[:i] + (new.upper() if name[i].isupper() else new) + name[i + 1 :]


def test_gent_sample_resolves_to_itself(lookup_db: Engine, real_data: Path) -> None:
    rows = random.Random(SEED).sample(gent_rows(real_data), SAMPLE_SIZE)
    wrong = []
    for i, row in enumerate(rows):
        query = _variants(row, i)
        result = lookup_address(lookup_db, query)
        best = result.best
        if not (
            result.found
            and best is not None
            and (best.street, best.house_number) == (row["street"], row["housenumber"])
        ):
            wrong.append((query, best and (best.street, best.house_number), result.message))
        elif result.confidence < 0.9:
            wrong.append((query, "low confidence", result.confidence))
    assert wrong == []


def test_gent_sample_with_a_typo_mostly_resolves(lookup_db: Engine, real_data: Path) -> None:
    rng = random.Random(SEED + 1)
    rows = rng.sample(gent_rows(real_data), SAMPLE_SIZE)
    right = 0
    misses = []
    for i, row in enumerate(rows):
        typo = dict(row, street=_typo(row["street"], rng))
        result = lookup_address(lookup_db, _variants(typo, i))
        best = result.best
        if best is not None and (best.street, best.house_number) == (
            row["street"],
            row["housenumber"],
        ):
            right += 1
        else:
            misses.append((typo["street"], row["street"], best and best.street))
    assert right >= 0.95 * SAMPLE_SIZE, misses[:30]


@pytest.mark.parametrize(
    "query", ["Koning Albertlaan 12 bus 3, 3360 Bierbeek", "12 koning albertln bierbeek"]
)
def test_bierbeek_examples(lookup_db: Engine, query: str) -> None:
    result = lookup_address(lookup_db, query)
    assert result.found
    best = result.best
    assert best is not None
    # CSV: Koning Albertlaan,12,3360,Bierbeek,24011,50.8633198,4.7629362
    assert (best.street, best.house_number, best.postcode) == ("Koning Albertlaan", "12", "3360")
    assert best.lat == pytest.approx(50.8633198, abs=1e-6)
    assert best.lon == pytest.approx(4.7629362, abs=1e-6)
    assert result.confidence >= 0.9


@pytest.mark.parametrize(
    ("query", "street", "number", "box"),
    [
        ("Rue de la Loi 16 1000 Bruxelles", "Rue de la Loi", "16", None),
        ("rue de la loi 16", "Rue de la Loi", "16", None),
        ("av. louise 54", "Avenue Louise", "54", None),
        ("av. louise 54 bte 3", "Avenue Louise", "54", "3"),
        ("Avenue Louise 54 boîte 4, 1050 Ixelles", "Avenue Louise", "54", "4"),
        ("AV LOUISE 54/4", "Avenue Louise", "54", "4"),
        ("chée de wavre 100", "Chaussée de Wavre", "100", None),
        ("Ch. de Wavre 102 bte 2, 1050 Ixelles", "Chaussée de Wavre", "102", "2"),
        ("Pl. Flagey 18", "Place Flagey", "18", None),
        ("bd anspach 1 bruxelles", "Boulevard Anspach", "1", None),
        ("rue st-lambert 7, 1200 woluwe-saint-lambert", "Rue Saint-Lambert", "7", None),
    ],
)
def test_brussels_french_and_abbreviations(
    lookup_db: Engine, query: str, street: str, number: str, box: str | None
) -> None:
    result = lookup_address(lookup_db, query)
    assert result.found, result.message
    best = result.best
    assert best is not None
    assert (best.street, best.house_number, best.box) == (street, number, box)


def test_unknown_number_lists_the_same_street(lookup_db: Engine, real_data: Path) -> None:
    with (real_data / "bierbeek_bin" / "addresses_crab_bin_municipalities.csv").open() as f:
        numbers = {
            r["housenumber"] for r in csv.DictReader(f) if r["street"] == "Koning Albertlaan"
        }
    assert "999" not in numbers
    result = lookup_address(lookup_db, "Koning Albertlaan 999, 3360 Bierbeek")
    assert not result.found and result.best is None and result.confidence == 0
    assert "999" in result.message and "Koning Albertlaan" in result.message
    same = [a for a in result.alternatives if a.reason == "same_street_other_number"]
    assert same and all(a.street == "Koning Albertlaan" for a in same)
    highest = max(int("".join(c for c in n if c.isdigit())) for n in numbers)
    assert str(highest) in {a.house_number for a in same}


def test_unknown_street_lists_similar_streets(lookup_db: Engine) -> None:
    result = lookup_address(lookup_db, "Koning Albertlaaan 12, 3360 Bierbeek")
    assert result.found  # one letter too many is still the street
    result = lookup_address(lookup_db, "Uitbereidingslaan 9999, 3360 Bierbeek")
    assert not result.found
    assert result.alternatives and result.alternatives[0].street == "Uitbreidingslaan"
    result = lookup_address(lookup_db, "Zwanenmeerstraat 3, 3360 Bierbeek")
    assert not result.found
    assert result.alternatives
    assert all(a.reason == "similar_street" for a in result.alternatives)
    assert "no street matches" in result.message


def test_empty_query_is_invalid(lookup_db: Engine) -> None:
    with pytest.raises(InvalidInput):
        lookup_address(lookup_db, "   ")


def test_api_search(lookup_db: Engine, settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/addresses/search", params={"q": "av. louise 54 bte 3", "limit": 3})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["found"] is True
        best = body["best"]
        assert (best["street"], best["house_number"], best["box"], best["postcode"]) == (
            "Avenue Louise",
            "54",
            "3",
            "1050",
        )
        assert best["position"]["type"] == "Point"
        lon, lat = best["position"]["coordinates"]
        assert (lon, lat) == (pytest.approx(4.3580, abs=1e-6), pytest.approx(50.8340, abs=1e-6))
        assert len(body["alternatives"]) <= 2
        missing = client.get("/addresses/search", params={"q": "Koning Albertlaan 999 Bierbeek"})
        assert missing.status_code == 200 and missing.json()["found"] is False
        assert client.get("/addresses/search", params={"q": ""}).status_code == 422


def test_cli_address(lookup_db: Engine, settings: Settings) -> None:
    runner = CliRunner()
    env = {"BINGEO_DATABASE_NAME": settings.database_name}
    result = runner.invoke(
        cli_app, ["address", "Rue de la Loi 16 1000 Bruxelles", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert '"house_number": "16"' in result.output and '"found": true' in result.output
    result = runner.invoke(cli_app, ["address", "12 koning albertln bierbeek"], env=env)
    assert result.exit_code == 0, result.output
    assert "Koning Albertlaan 12" in result.output
