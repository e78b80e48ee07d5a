"""The networks resource: create, read, list, change, delete; versions; every write audited."""

from __future__ import annotations

import json

import pytest
import shapely
from api_helpers import (
    CENTRE_X,
    CENTRE_Y,
    NIS_X,
    ZONE_A,
    World,
    assert_error,
    audit_rows,
    network_count,
    square,
)
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from api.geojson import GeoJSONResponse, feature_collection, lonlat_geometry
from bingeo.geometry import storage_to_geojson


def test_create_read_change_delete_audited(client: TestClient, db, world: World) -> None:
    admin = world.auth("admin")
    body = {
        "name": "BIN Opvelp",
        "kind": "BIN-Z",
        "code": "opvelp-1",
        "geometry": square(CENTRE_X, 0.003),
    }
    created = client.post("/networks", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/geo+json")
    feature = created.json()
    network_id = feature["id"]
    assert created.headers["Location"] == f"/networks/{network_id}"
    assert created.headers["ETag"] == '"1"'
    properties = feature["properties"]
    assert properties["code"] == "opvelp-1"
    # A new network starts as an idea; where it lies comes from its area.
    assert properties["kind"] == "BIN-Z" and properties["status"] == "idea"
    assert properties["nis_codes"] == [NIS_X] and properties["police_zone_codes"] == [ZONE_A]
    assert properties["nis_code"] == NIS_X and properties["crossing"] is False
    assert properties["version"] == 1
    # 0.006 x 0.006 degrees at 50.83 N: about 422 m x 667 m
    assert 250_000 < properties["area_m2"] < 310_000
    assert feature["geometry"]["type"] == "MultiPolygon"
    (lon, lat) = feature["geometry"]["coordinates"][0][0][0]
    assert abs(lon - CENTRE_X[0]) < 0.01 and abs(lat - CENTRE_X[1]) < 0.01

    read = client.get(f"/networks/{network_id}")
    assert read.status_code == 200 and read.headers["ETag"] == '"1"'
    assert read.json()["properties"]["name"] == "BIN Opvelp"

    changed = client.patch(
        f"/networks/{network_id}",
        json={"name": "BIN Opvelp-Noord", "geometry": square(CENTRE_X, 0.002)},
        headers=admin | {"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"2"'
    assert changed.json()["properties"]["version"] == 2
    assert changed.json()["properties"]["area_m2"] < 150_000

    skipped_steps = client.patch(
        f"/networks/{network_id}", json={"version": 2, "status": "charter"}, headers=admin
    )
    assert_error(skipped_steps, 409, "illegal_transition")

    by_field = client.patch(
        f"/networks/{network_id}", json={"version": 2, "name": "BIN Opvelp"}, headers=admin
    )
    assert by_field.status_code == 200 and by_field.json()["properties"]["version"] == 3

    deleted = client.delete(f"/networks/{network_id}", headers=admin | {"If-Match": '"3"'})
    assert deleted.status_code == 204
    assert_error(client.get(f"/networks/{network_id}"), 404, "not_found")

    entries = audit_rows(db, object_id=str(network_id))
    assert [e["action"] for e in entries] == ["create", "update", "update", "delete"]
    for entry, response in zip(entries, (created, changed, by_field, deleted), strict=True):
        assert entry["user_name"] == "admin" and entry["role"] == "admin"
        assert entry["user_id"] == world.user_ids["admin"]
        assert entry["object_type"] == "network" and entry["outcome"] == "allowed"
        assert entry["scope"].endswith(f"municipality:{NIS_X},police_zone:{ZONE_A}")
        assert entry["request_id"] == response.headers["X-Request-Id"]
        assert entry["at"] is not None
    assert entries[1]["details"] == {"fields": ["geometry", "name"], "from_version": 1}

    trail = client.get("/audit", params={"action": "update"}, headers=admin).json()
    assert trail["total"] == 2
    assert {e["request_id"] for e in trail["entries"]} == {
        changed.headers["X-Request-Id"],
        by_field.headers["X-Request-Id"],
    }


def test_planner_write_is_audited_with_scope(client: TestClient, db, world: World) -> None:
    created = client.post(
        "/networks",
        json={"name": "BIN Lovenjoel", "kind": "BIN", "geometry": square()},
        headers=world.auth("planner_x"),
    )
    assert created.status_code == 201
    (entry,) = audit_rows(db, user_name="planner_x")
    assert entry["action"] == "create" and entry["role"] == "municipality_planner"
    assert entry["object_id"] == str(created.json()["id"])
    assert f"municipality:{NIS_X}" in entry["scope"]
    assert entry["request_id"] == created.headers["X-Request-Id"]


def test_versions_and_conflicts(client: TestClient, db, world: World) -> None:
    admin = world.auth("admin")
    url = f"/networks/{world.net_x}"
    etag = client.get(url).headers["ETag"]
    assert etag == '"1"'
    first = client.patch(url, json={"name": "Eerste"}, headers=admin | {"If-Match": etag})
    assert first.status_code == 200 and first.json()["properties"]["version"] == 2
    # a second writer still holding version 1 gets a conflict, not a silent overwrite
    stale = client.patch(url, json={"name": "Tweede"}, headers=admin | {"If-Match": etag})
    body = assert_error(stale, 409, "conflict")
    assert "version 2" in body["detail"]
    stale_field = client.patch(url, json={"name": "Tweede", "version": 1}, headers=admin)
    assert_error(stale_field, 409, "conflict")
    weak = client.patch(url, json={"name": "Derde"}, headers=admin | {"If-Match": 'W/"2"'})
    assert weak.status_code == 200 and weak.headers["ETag"] == '"3"'
    assert_error(client.patch(url, json={"name": "x"}, headers=admin), 428, "precondition_required")
    assert_error(client.patch(url, json={"name": "x"}, headers=admin | {"If-Match": "*x"}), 422)
    assert_error(client.patch(url, json={}, headers=admin | {"If-Match": '"3"'}), 422)
    assert_error(client.patch(url, json={"name": None}, headers=admin | {"If-Match": '"3"'}), 422)
    assert_error(client.delete(url, headers=admin | {"If-Match": '"1"'}), 409, "conflict")
    assert_error(client.delete(f"{url}?version=2", headers=admin), 409, "conflict")
    assert_error(client.delete(url, headers=admin), 428)
    assert network_count(db) == 2
    assert client.get(url).json()["properties"]["name"] == "Derde"
    assert client.delete(f"{url}?version=3", headers=admin).status_code == 204
    assert network_count(db) == 1
    assert_error(client.delete(f"{url}?version=3", headers=admin), 404)
    # refused conflicts write nothing to the trail
    assert [e["action"] for e in audit_rows(db, object_id=str(world.net_x))] == [
        "create",
        "update",
        "update",
        "delete",
    ]


def test_duplicate_code_is_conflict(client: TestClient, db, world: World) -> None:
    admin = world.auth("admin")
    body = {"name": "A", "kind": "BIN", "code": "dup-1", "geometry": square()}
    assert client.post("/networks", json=body, headers=admin).status_code == 201
    assert_error(client.post("/networks", json=body, headers=admin), 409, "conflict")
    assert network_count(db) == 3


def test_list_filters_and_paging(client: TestClient, world: World) -> None:
    everything = client.get("/networks").json()
    assert everything["type"] == "FeatureCollection"
    assert everything["numberMatched"] == 2 and everything["numberReturned"] == 2
    assert [f["id"] for f in client.get(f"/networks?municipality={NIS_X}").json()["features"]] == [
        world.net_x
    ]
    assert [f["id"] for f in client.get(f"/networks?police_zone={ZONE_A}").json()["features"]] == [
        world.net_x
    ]
    lon, lat = CENTRE_Y
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    assert [f["id"] for f in client.get(f"/networks?bbox={box}").json()["features"]] == [
        world.net_y
    ]
    assert client.get("/networks?kind=BIN-Z").json()["numberMatched"] == 0
    assert client.get("/networks?status=idea").json()["numberMatched"] == 2
    page = client.get("/networks?limit=1").json()
    assert page["numberReturned"] == 1 and page["numberMatched"] == 2
    (link,) = page["links"]
    assert link["rel"] == "next" and "offset=1" in link["href"]
    second = client.get("/networks?limit=1&offset=1").json()
    assert second["features"][0]["id"] == world.net_y and second["links"] == []
    assert client.get("/networks?limit=100000").status_code == 200
    assert_error(client.get("/networks?kind=nope"), 422)
    assert_error(client.get("/networks?bbox=10,10,0,0"), 422)


def test_healthz_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    schema = client.get("/openapi.json").json()
    assert "/networks" in schema["paths"] and "/audit" in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_ids_beyond_the_integer_range(client: TestClient, db, world: World) -> None:
    # found by the fuzz test: such ids reached PostgreSQL and came back as a 500
    from bingeo.access import Actor
    from bingeo.errors import NotFound
    from bingeo.services.networks import get_network

    assert "network_id" in assert_error(client.get("/networks/2147483648"), 422)["detail"]
    assert_error(client.delete("/networks/99999999999?version=1", headers=world.auth("admin")), 422)
    with pytest.raises(NotFound, match="2147483648"):
        get_network(db, Actor(), 2**31)


# how residents join ------------------------------------------------------------------------------

COORDINATOR = {
    "name": "Griet Vandenbroucke",
    "email": "griet.vdb@example.be",
    "phone": "0470123456",
}


def _bierbeek_places(engine, real_data) -> None:
    """The real municipality of Bierbeek (24011) and its police zone (ipz48), with their names."""
    from bingeo.db.models import AreaLevel, PoliceZoneMunicipality
    from bingeo.services.imports import import_areas

    # The real zone replaces the test world's made-up one.
    with engine.begin() as connection:
        connection.execute(PoliceZoneMunicipality.__table__.delete())
    path = real_data / "bierbeek_bin" / "bin_municipalities_context.gpkg"
    import_areas(engine, path, AreaLevel.municipality, layer="municipalities")
    import_areas(engine, path, AreaLevel.police_zone, layer="police_zones")


def _add_coordinator(engine, network_id: int) -> None:
    from bingeo.db.models import ContactRole, NetworkContact

    with engine.begin() as connection:
        connection.execute(
            NetworkContact.__table__.insert().values(
                network_id=network_id, role=ContactRole.coordinator, **COORDINATOR
            )
        )


def _assert_no_personal_data(response) -> None:
    for value in COORDINATOR.values():
        assert value not in response.text


def test_how_to_join_given_and_generated(client: TestClient, db, world: World, real_data) -> None:
    _bierbeek_places(db, real_data)
    admin = world.auth("admin")
    given = "Vul het formulier op bierbeek.be in of kom naar het onthaal van het gemeentehuis."
    body = {"name": "BIN Korbeek-Lo", "kind": "BIN", "how_to_join": given}
    created = client.post("/networks", json=body | {"geometry": square(half=0.001)}, headers=admin)
    assert created.status_code == 201, created.text
    properties = created.json()["properties"]
    assert properties["how_to_join"] == given
    # Municipality and zone were derived from where the area lies.
    assert properties["nis_codes"] == [NIS_X] and properties["police_zone_codes"] == ["ipz48"]
    network_id = created.json()["id"]
    _add_coordinator(db, network_id)
    _add_coordinator(db, world.net_x)
    point = {"lon": CENTRE_X[0], "lat": CENTRE_X[1]}

    # Anonymous resident: the given text as is, generated ones for the network without one.
    answer = client.get("/points/networks", params=point)
    assert answer.status_code == 200, answer.text
    networks = {n["name"]: n for n in answer.json()["networks"]}
    assert set(networks) == {"BIN X", "BIN Korbeek-Lo"}
    assert networks["BIN Korbeek-Lo"] == {
        "name": "BIN Korbeek-Lo",
        "kind": "BIN",
        "status": "idea",
        "how_to_join": given,
    }
    generated = networks["BIN X"]["how_to_join"]
    # BIN X lies in Bierbeek: named with its real zone, derived again when it was imported.
    assert "gemeente Bierbeek" in generated
    assert "PZ Bierbeek - Boutersem - Holsbeek - Lubbeek" in generated
    assert "BIN X" in generated and "wijkagent" in generated
    _assert_no_personal_data(answer)

    # Emptied, the text is generated, in the language the resident asks for.
    changed = client.patch(
        f"/networks/{network_id}", json={"how_to_join": "  "}, headers=admin | {"If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["properties"]["how_to_join"] is None
    address_id = _address_at(db, CENTRE_X)
    by_address = client.get(f"/addresses/{address_id}/networks", params={"lang": "fr"})
    assert by_address.status_code == 200, by_address.text
    texts = {n["name"]: n["how_to_join"] for n in by_address.json()["networks"]}
    assert texts["BIN Korbeek-Lo"] == (
        "Le PLP « BIN Korbeek-Lo » est ouvert aux habitants de son périmètre. Pour y adhérer, "
        "contactez le service prévention de la commune de Bierbeek ou l'agent de quartier de la "
        "police locale (PZ Bierbeek - Boutersem - Holsbeek - Lubbeek) : ils vous mettront en "
        "relation avec le coordinateur."
    )
    _assert_no_personal_data(by_address)
    for header, language_word in (
        ("fr-BE,fr;q=0.9,nl;q=0.8", "contactez"),
        ("en-GB, nl-BE;q=0.5, fr;q=0.4", "contact op met"),
        ("de, en", "contact op met"),
        ("nl;q=0, fr;q=0.1", "contactez"),
    ):
        answer = client.get("/points/networks", params=point, headers={"Accept-Language": header})
        texts = {n["name"]: n["how_to_join"] for n in answer.json()["networks"]}
        assert language_word in texts["BIN Korbeek-Lo"], header
    # ``lang`` wins over the header; other languages are refused.
    answer = client.get(
        "/points/networks", params=point | {"lang": "nl"}, headers={"Accept-Language": "fr"}
    )
    assert all("contact op met" in n["how_to_join"] for n in answer.json()["networks"])
    assert_error(client.get("/points/networks", params=point | {"lang": "de"}), 422)

    # A BIN-Z speaks to businesses.
    client.patch(
        f"/networks/{network_id}", json={"kind": "BIN-Z"}, headers=admin | {"If-Match": '"2"'}
    )
    answer = client.get("/points/networks", params=point)
    texts = {n["name"]: n["how_to_join"] for n in answer.json()["networks"]}
    assert texts["BIN Korbeek-Lo"].startswith(
        "BIN-Z 'BIN Korbeek-Lo' staat open voor zelfstandigen"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Mail naar jan.peeters@telenet.be", "e-mail address 'jan.peeters@telenet.be'"),
        ("Schrijf naar coordinator [at] bin-opvelp.be", "e-mail address"),
        ("Bel Jan: 0475 12 34 56", "phone number '0475 12 34 56'"),
        ("GSM +32 475 12 34 56 na 18 uur", "phone number '+32 475 12 34 56'"),
        ("Tel. 016/81.23.45", "phone number '016/81.23.45'"),
        ("Bel 02 123 45 67 of 0475/12.34.56", "phone number '0475/12.34.56'"),
    ],
)
def test_how_to_join_refuses_contact_details(
    client: TestClient, db, world: World, text: str, found: str
) -> None:
    admin = world.auth("admin")
    body = {"name": "BIN Publiek", "kind": "BIN", "geometry": square(half=0.001)}
    before = network_count(db)
    refused = client.post("/networks", json=body | {"how_to_join": text}, headers=admin)
    detail = assert_error(refused, 422, "contact_details_in_public_text")["detail"]
    assert "how_to_join" in detail and found in detail
    assert network_count(db) == before
    created = client.post(
        "/networks", json=body | {"how_to_join": "Via het e-loket."}, headers=admin
    )
    assert created.status_code == 201, created.text
    url = f"/networks/{created.json()['id']}"
    changed = client.patch(url, json={"how_to_join": text}, headers=admin | {"If-Match": '"1"'})
    assert found in assert_error(changed, 422, "contact_details_in_public_text")["detail"]
    assert client.get(url).json()["properties"]["how_to_join"] == "Via het e-loket."
    # Dates, house numbers and postcodes are no phone numbers.
    fine = "Vergadering op 01.02.2024 om 20 uur, Kerkstraat 12 bus 0201, 3360 Bierbeek."
    kept = client.patch(url, json={"how_to_join": fine}, headers=admin | {"If-Match": '"1"'})
    assert kept.status_code == 200, kept.text


def test_how_to_join_from_a_network_file(
    client: TestClient, db, world: World, real_data, tmp_path
) -> None:
    import json

    from bingeo.services.imports import import_networks

    _bierbeek_places(db, real_data)
    text = "Inschrijven via het e-loket van de gemeente Bierbeek."

    def write(properties: dict) -> None:
        feature = {"type": "Feature", "properties": properties, "geometry": square(half=0.001)}
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))

    path = tmp_path / "networks.geojson"
    write({"code": "BB-1", "name": "BIN Lovenjoel", "kind": "BIN", "how_to_join": text})
    import_networks(db, path)
    point = {"lon": CENTRE_X[0], "lat": CENTRE_X[1]}
    networks = {
        n["name"]: n for n in client.get("/points/networks", params=point).json()["networks"]
    }
    assert networks["BIN Lovenjoel"]["how_to_join"] == text
    listed = client.get("/networks").json()["features"]
    assert {f["properties"]["code"]: f["properties"]["how_to_join"] for f in listed}["BB-1"] == text

    # A file without the property keeps the stored text (set by file or through the API).
    write({"code": "BB-1", "name": "BIN Lovenjoel-Centrum", "kind": "BIN"})
    import_networks(db, path)
    networks = {
        n["name"]: n for n in client.get("/points/networks", params=point).json()["networks"]
    }
    assert networks["BIN Lovenjoel-Centrum"]["how_to_join"] == text


def _address_at(engine, lonlat: tuple[float, float]) -> int:
    """Store an address at ``lonlat`` (matched by its import) and return its id."""
    import tempfile
    from pathlib import Path

    from bingeo.services.imports import import_addresses

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "address.csv"
        path.write_text(
            "street,housenumber,postcode,municipality,nis_code,lon,lat\n"
            f"Dorpsstraat,1,3360,Bierbeek,{NIS_X},{lonlat[0]},{lonlat[1]}\n"
        )
        import_addresses(engine, path)
    from sqlalchemy import select

    from bingeo.db.models import Address

    with engine.connect() as connection:
        return connection.execute(select(Address.__table__.c.id)).scalar_one()


def test_changed_area_is_served_everywhere(client: TestClient, db, world: World) -> None:
    """Geometries are encoded once per distinct area: a changed area must show at once in
    every read (one network, a bbox page, the OGC items), never the area encoded before."""
    admin = world.auth("admin")
    lon, lat = CENTRE_Y
    box = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    reads = (
        f"/networks/{world.net_y}",
        f"/networks?bbox={box}",
        f"/collections/networks/items?bbox={box}",
    )

    def corners() -> list[list[float]]:
        found = []
        for path in reads:
            body = client.get(path).json()
            feature = body if body["type"] == "Feature" else body["features"][0]
            found.append(min(feature["geometry"]["coordinates"][0][0]))
        return found

    before = corners()
    assert all(abs(c[0] - (lon - 0.004)) < 1e-6 for c in before), before
    version = client.get(f"/networks/{world.net_y}").headers["ETag"]
    changed = client.patch(
        f"/networks/{world.net_y}",
        json={"geometry": square(CENTRE_Y, 0.002)},
        headers=admin | {"If-Match": version},
    )
    assert changed.status_code == 200, changed.text
    after = corners()
    assert all(abs(c[0] - (lon - 0.002)) < 1e-6 for c in after), after


def test_encoded_geometries_written_as_plain_json() -> None:
    """A response with geometries encoded ahead is the very text of the plain one, also next
    to text that looks like the placeholder the encoding uses."""
    area = shapely.buffer(shapely.Point(173_000, 174_000), 300)
    hole = shapely.Polygon(area.exterior, [shapely.Point(173_000, 174_000).buffer(50).exterior])
    names = ["Opvelp – Noord", "\\u00000", "\x000", '"\x001"']

    def body(geometry) -> dict:
        features = [
            {"type": "Feature", "geometry": geometry(g), "properties": {"name": n}}
            for g, n in zip([area, hole, area, None], names, strict=True)
        ]
        return feature_collection(features, total=4, links=[])

    def plain(g):
        return None if g is None else storage_to_geojson(g)

    def encoded(g):
        return None if g is None else lonlat_geometry(g)

    expected = JSONResponse(body(plain)).body
    assert GeoJSONResponse(body(encoded)).body == expected
    assert json.loads(expected)["features"][1]["properties"]["name"] == "\\u00000"
    assert json.loads(lonlat_geometry(hole).text) == json.loads(json.dumps(plain(hole)))
