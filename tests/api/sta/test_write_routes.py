"""SensorThings Create-Update-Delete through the full app (real uvicorn, real influxd, real operators file).

Writes need an operator; each is audited; deep inserts are atomic; registry entities are read-only;
deletes cascade as OGC 18-088 10.4 says; what is written shows up on the read routes.
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.operators.auth import Role
from api.operators.users import write_users_file
from api.settings import ApiSettings
from tests.api.sta.conftest import CLASSIFIED, serve

pytestmark = pytest.mark.integration

OPERATOR = ("op", "operator-password-1")
VIEWER = ("viewer", "viewer-password-1")
OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
POINT = {"type": "Point", "coordinates": [4.43, 52.13]}


@pytest.fixture
def write_settings(sta_settings: ApiSettings, tmp_path: Path) -> ApiSettings:
    """The SensorThings test settings with an operators file of one operator and one viewer."""
    users = tmp_path / "operators.toml"
    write_users_file(users, [(OPERATOR[0], Role.OPERATOR, OPERATOR[1]), (VIEWER[0], Role.VIEWER, VIEWER[1])])
    return dataclasses.replace(sta_settings, operators_path=str(users))


@pytest.fixture
def base(write_settings: ApiSettings) -> Iterator[str]:
    """The served app's SensorThings service root."""
    for url in serve(create_app(write_settings)):
        yield f"{url}/v1.1"


@pytest.fixture
def op(base: str) -> Iterator[httpx.Client]:
    """A client authenticated as the operator."""
    with httpx.Client(base_url=base, auth=OPERATOR, timeout=20) as client:
        yield client


@pytest.fixture
def anon(base: str) -> Iterator[httpx.Client]:
    """An anonymous client."""
    with httpx.Client(base_url=base, timeout=20) as client:
        yield client


def thing_body(**extra: Any) -> dict[str, Any]:
    return {"name": "weather station", "description": "a station on the town hall", **extra}


def location_body() -> dict[str, Any]:
    return {"name": "town hall", "description": "roof", "encodingType": "application/geo+json", "location": POINT}


def datastream_body(**extra: Any) -> dict[str, Any]:
    return {"name": "air temperature", "description": "2 m above the roof",
            "unitOfMeasurement": {"name": "degree Celsius", "symbol": "Cel",
                                  "definition": "http://unitsofmeasure.org/ucum.html#para-30"},
            "observationType": OM + "OM_Measurement",
            "Sensor": {"name": "PT100", "description": "a thermometer", "encodingType": "application/pdf",
                       "metadata": "https://example.org/pt100.pdf"},
            "ObservedProperty": {"name": "air temperature", "definition": "https://smartdatamodels.org/temperature",
                                 "description": "temperature of the air"}, **extra}


def audit_rows(write_settings: ApiSettings) -> list[tuple[str, str, str, str]]:
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(Path(write_settings.state_dir) / "audit.sqlite") as db:
        return [tuple(r) for r in db.execute("SELECT who, action, target, result FROM audit ORDER BY seq")]


def test_anonymous_writes_are_401_with_a_challenge_and_viewers_403(base, anon):
    resp = anon.post("/Things", json=thing_body())
    assert resp.status_code == 401
    assert "Basic" in resp.headers["www-authenticate"]
    for method in ("PATCH", "PUT", "DELETE"):
        assert anon.request(method, "/Things('api-1')", json={}).status_code == 401
    with httpx.Client(base_url=base, auth=VIEWER, timeout=20) as viewer:
        assert viewer.post("/Things", json=thing_body()).status_code == 403
    assert anon.get("/Things", params={"$filter": "name eq 'weather station'"}).json()["value"] == []


def test_deep_insert_answers_201_with_location_and_body_and_is_readable(op, anon, write_settings):
    body = thing_body(properties={"owner": "gemeente"}, Locations=[location_body()],
                      Datastreams=[datastream_body()])
    resp = op.post("/Things", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    ident = created["@iot.id"]
    assert ident.startswith("api-")
    assert resp.headers["location"] == created["@iot.selfLink"] == f"{op.base_url}Things('{ident}')".replace(
        "v1.1Things", "v1.1/Things")
    assert created["name"] == "weather station" and created["properties"] == {"owner": "gemeente"}
    thing = anon.get(f"/Things('{ident}')", params={"$expand": "Locations,HistoricalLocations,Datastreams"}).json()
    assert [loc["name"] for loc in thing["Locations"]] == ["town hall"]
    assert len(thing["HistoricalLocations"]) == 1  # made by the service: the Thing got a Location
    (stream,) = thing["Datastreams"]
    sensor = anon.get(f"/Datastreams('{stream['@iot.id']}')/Sensor").json()
    assert sensor["name"] == "PT100"
    rows = audit_rows(write_settings)
    assert (OPERATOR[0], "sta.create", "POST /v1.1/Things", "ok") in rows


def test_a_failing_deep_insert_creates_nothing(op, anon):
    bad = datastream_body(unitOfMeasurement={"name": "C", "symbol": "C", "definition": "x", "colour": "red"})
    resp = op.post("/Things", json=thing_body(Locations=[location_body()], Datastreams=[bad]))
    assert resp.status_code == 400
    assert "Datastreams[0].unitOfMeasurement.colour" in resp.json()["detail"]
    for entity_set in ("Things", "Locations", "Sensors", "HistoricalLocations"):
        values = anon.get(f"/{entity_set}", params={"$top": "10000"}).json()["value"]
        assert not [v for v in values if v["@iot.id"].startswith("api-")], entity_set


@pytest.mark.parametrize(("body", "named"), [
    ({"description": "no name"}, "name: missing"),
    ({"name": 5, "description": "x"}, "name: must be a string"),
    ({"name": "x", "description": "y", "colour": "red"}, "colour: unknown property"),
    ({"name": "x", "description": "y", "properties": []}, "properties: must be a JSON object"),
    ({"name": "x", "description": "y", "Locations": {"name": "not a list"}}, "Locations: must be a JSON array"),
    ({"name": "x", "description": "y", "Locations": [{"@iot.id": "nope"}]}, "Locations[0]: no Locations('nope')"),
])
def test_bad_bodies_are_400_naming_the_property(op, body, named):
    resp = op.post("/Things", json=body)
    assert resp.status_code == 400
    assert named in resp.json()["detail"]


def test_location_encoding_and_geometry_are_checked(op):
    loc = location_body()
    resp = op.post("/Locations", json={**loc, "encodingType": "text/plain"})
    assert resp.status_code == 400 and "encodingType" in resp.json()["detail"]
    resp = op.post("/Locations", json={**loc, "location": {"type": "Point", "coordinates": ["a"]}})
    assert resp.status_code == 400 and resp.json()["detail"].startswith("location:")
    assert op.post("/Locations", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400


def test_link_by_id_and_post_through_navigation(op, anon):
    thing = op.post("/Things", json=thing_body()).json()["@iot.id"]
    loc = op.post(f"/Things('{thing}')/Locations", json=location_body())
    assert loc.status_code == 201
    assert anon.get(f"/Things('{thing}')/Locations").json()["value"][0]["@iot.id"] == loc.json()["@iot.id"]
    sensor = op.post("/Sensors", json=datastream_body()["Sensor"]).json()["@iot.id"]
    stream = op.post("/Datastreams", json=datastream_body(Thing={"@iot.id": thing}, Sensor={"@iot.id": sensor}))
    assert stream.status_code == 201, stream.text
    assert anon.get(f"/Sensors('{sensor}')/Datastreams").json()["value"][0]["@iot.id"] == stream.json()["@iot.id"]
    # A new Datastream on a registry Thing (and Sensor) is allowed: it changes nothing the registry says.
    on_device = op.post("/Things('vs-sl-101')/Datastreams",
                        json=datastream_body(Sensor={"@iot.id": "street_light"}))
    assert on_device.status_code == 201, on_device.text
    ids = [d["@iot.id"] for d in anon.get("/Things('vs-sl-101')/Datastreams").json()["value"]]
    assert on_device.json()["@iot.id"] in ids


def test_datastream_on_a_classified_device_stays_hidden(op, anon):
    stream = op.post(f"/Things('{CLASSIFIED}')/Datastreams", json=datastream_body())
    assert stream.status_code == 201
    assert anon.get(f"/Datastreams('{stream.json()['@iot.id']}')").status_code == 404


def test_registry_entities_are_read_only(op):
    for method, path in (("PATCH", "/Things('vs-sl-101')"), ("PUT", "/Sensors('street_light')"),
                         ("DELETE", "/Datastreams('vs-sl-101.power')"), ("DELETE", "/Locations('vs-sl-101')")):
        resp = op.request(method, path, json={"name": "x"})
        assert resp.status_code == 409, (method, path)
        assert "managed by the registry" in resp.json()["detail"]
    resp = op.post("/Things('vs-sl-101')/Locations", json=location_body())
    assert resp.status_code == 409
    # A HistoricalLocation would change where the registry says the device is.
    resp = op.post("/HistoricalLocations", json={"time": "2025-01-01T00:00:00Z", "Thing": {"@iot.id": "vs-sl-101"},
                                                 "Locations": [location_body()]})
    assert resp.status_code == 409 and "managed by the registry" in resp.json()["detail"]
    assert op.patch("/Things('api-999')", json={"name": "x"}).status_code == 404


def test_patch_put_and_json_patch(op, anon):
    ident = op.post("/Things", json=thing_body(properties={"a": 1})).json()["@iot.id"]
    resp = op.patch(f"/Things('{ident}')", json={"name": "renamed"})
    assert resp.status_code == 200 and resp.json()["name"] == "renamed"
    got = anon.get(f"/Things('{ident}')").json()
    assert (got["name"], got["description"], got["properties"]) == ("renamed", "a station on the town hall", {"a": 1})
    assert op.patch(f"/Things('{ident}')", json={"name": None}).status_code == 400
    resp = op.put(f"/Things('{ident}')", json={"name": "replaced"})
    assert resp.status_code == 400 and "description: missing" in resp.json()["detail"]
    assert op.put(f"/Things('{ident}')", json={"name": "replaced", "description": "new"}).status_code == 200
    assert "properties" not in anon.get(f"/Things('{ident}')").json()  # PUT removed what it did not give
    patch = [{"op": "replace", "path": "/name", "value": "patched"},
             {"op": "add", "path": "/properties", "value": {"b": 2}}]
    resp = op.patch(f"/Things('{ident}')", content=httpx.Request("PATCH", "/", json=patch).content,
                    headers={"content-type": "application/json-patch+json"})
    assert resp.status_code == 200, resp.text
    assert anon.get(f"/Things('{ident}')").json()["properties"] == {"b": 2}


def test_changing_a_things_location_adds_a_historical_location(op, anon):
    ident = op.post("/Things", json=thing_body(Locations=[location_body()])).json()["@iot.id"]
    other = op.post("/Locations", json={**location_body(), "name": "library"}).json()["@iot.id"]
    assert op.patch(f"/Things('{ident}')", json={"Locations": [{"@iot.id": other}]}).status_code == 200
    hist = anon.get(f"/Things('{ident}')/HistoricalLocations", params={"$expand": "Locations"}).json()["value"]
    assert len(hist) == 2
    assert {h["Locations"][0]["name"] for h in hist} == {"town hall", "library"}


def test_delete_cascades_and_audits(op, anon, write_settings):
    made = op.post("/Things", json=thing_body(Locations=[location_body()], Datastreams=[datastream_body()])).json()
    thing = made["@iot.id"]
    streams = [d["@iot.id"] for d in anon.get(f"/Things('{thing}')/Datastreams").json()["value"]]
    sensor = anon.get(f"/Datastreams('{streams[0]}')/Sensor").json()["@iot.id"]
    location = anon.get(f"/Things('{thing}')/Locations").json()["value"][0]["@iot.id"]
    assert op.delete(f"/Things('{thing}')").status_code == 200
    assert anon.get(f"/Things('{thing}')").status_code == 404
    assert anon.get(f"/Datastreams('{streams[0]}')").status_code == 404  # a Thing takes its Datastreams
    assert anon.get(f"/Sensors('{sensor}')").status_code == 200  # but not the Sensor they used
    assert anon.get(f"/Locations('{location}')/HistoricalLocations").json()["value"] == []
    assert op.delete(f"/Things('{thing}')").status_code == 404
    stream = op.post("/Datastreams", json=datastream_body(Thing={"@iot.id": "vs-sl-101"},
                                                          Sensor={"@iot.id": sensor})).json()["@iot.id"]
    assert op.delete(f"/Sensors('{sensor}')").status_code == 200
    assert anon.get(f"/Datastreams('{stream}')").status_code == 404  # a Sensor takes its Datastreams
    actions = [(r[1], r[3]) for r in audit_rows(write_settings)]
    assert ("sta.delete", "ok") in actions and ("sta.delete", "refused 404") in actions


def test_store_file_is_private_and_ids_are_not_reused(op, write_settings):
    first = op.post("/Things", json=thing_body()).json()["@iot.id"]
    op.delete(f"/Things('{first}')")
    second = op.post("/Things", json=thing_body()).json()["@iot.id"]
    assert first != second
    path = Path(write_settings.state_dir) / "sta.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    wal = path.with_name("sta.sqlite-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_deep_insert_from_an_observation_upwards(op, anon):
    body = {"result": 3, "phenomenonTime": "2025-11-24T16:00:00Z",
            "Datastream": datastream_body(Thing=thing_body(Locations=[location_body()])),
            "FeatureOfInterest": {"name": "roof", "description": "d", "encodingType": "application/geo+json",
                                  "feature": POINT}}
    resp = op.post("/Observations", json=body)
    assert resp.status_code == 201, resp.text
    stream, _, when = resp.json()["@iot.id"].rpartition(".")
    assert when == "1764000000000000"
    thing = anon.get(f"/Datastreams('{stream}')/Thing").json()
    assert thing["name"] == "weather station"
    assert anon.get(f"/Observations('{resp.json()['@iot.id']}')/FeatureOfInterest").json()["name"] == "roof"


def test_a_location_given_to_a_thing_from_its_side_replaces_the_current_one(op, anon):
    thing = op.post("/Things", json=thing_body(Locations=[location_body()])).json()["@iot.id"]
    resp = op.post("/Locations", json={**location_body(), "name": "new place", "Things": [{"@iot.id": thing}]})
    assert resp.status_code == 201
    assert [loc["name"] for loc in anon.get(f"/Things('{thing}')/Locations").json()["value"]] == ["new place"]
    assert len(anon.get(f"/Things('{thing}')/HistoricalLocations").json()["value"]) == 2
    # Deleting the Location removes the HistoricalLocation that named only it, and the Thing's link.
    assert op.delete(f"/Locations('{resp.json()['@iot.id']}')").status_code == 200
    assert anon.get(f"/Things('{thing}')/Locations").json()["value"] == []
    assert len(anon.get(f"/Things('{thing}')/HistoricalLocations").json()["value"]) == 1


def test_deleting_a_feature_of_interest_drops_its_observations(op, anon, influx):
    made = op.post("/Things", json=thing_body(Locations=[location_body()], Datastreams=[datastream_body()])).json()
    stream = anon.get(f"/Things('{made['@iot.id']}')/Datastreams").json()["value"][0]["@iot.id"]
    obs = op.post(f"/Datastreams('{stream}')/Observations", json={"result": 1}).json()["@iot.id"]
    foi = anon.get(f"/Observations('{obs}')/FeatureOfInterest").json()["@iot.id"]
    assert op.delete(f"/FeaturesOfInterest('{foi}')").status_code == 200
    assert anon.get(f"/Datastreams('{stream}')/Observations").json()["value"] == []
    assert anon.get(f"/Datastreams('{stream}')").status_code == 200
    assert influx.query('SELECT * FROM "sta_observation"') == []


def test_refusals_of_ids_depth_and_type_changes(op):
    nested = '{"a":' * 500 + '"leaf"' + "}" * 500  # deep enough to exhaust a recursive copy or encoder
    resp = op.post("/Things", content=f'{{"name": "n", "description": "d", "properties": {nested}}}',
                   headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "nested deeper" in resp.json()["detail"]
    resp = op.post("/Things", json=thing_body(**{"@iot.id": "mine"}))
    assert resp.status_code == 400 and resp.json()["detail"].startswith("@iot.id")
    deep: dict[str, Any] = thing_body()
    node = deep
    for _ in range(10):  # 30 entities deep, within the JSON nesting limit
        loc = {**location_body(), "HistoricalLocations": [{"time": "2025-01-01T00:00:00Z", "Thing": thing_body()}]}
        node["Locations"] = [loc]
        node = loc["HistoricalLocations"][0]["Thing"]
    resp = op.post("/Things", json=deep)
    assert resp.status_code == 400 and "at most 16 levels" in resp.json()["detail"]
    made = op.post("/Things", json=thing_body(Datastreams=[datastream_body()])).json()["@iot.id"]
    stream = op.get(f"/Things('{made}')/Datastreams").json()["value"][0]["@iot.id"]
    resp = op.patch(f"/Datastreams('{stream}')", json={"observationType": OM + "OM_CountObservation"})
    assert resp.status_code == 400 and resp.json()["detail"].startswith("observationType")
    resp = op.patch(f"/Datastreams('{stream}')", json={"Sensor": {"name": "new"}})
    assert resp.status_code == 400 and "by @iot.id" in resp.json()["detail"]


def test_historical_locations_and_reverse_deep_inserts(op, anon):
    loc = op.post("/Locations", json={**location_body(), "Things": [thing_body(name="made from a Location")]})
    assert loc.status_code == 201, loc.text
    things = anon.get(f"/Locations('{loc.json()['@iot.id']}')/Things").json()["value"]
    assert [t["name"] for t in things] == ["made from a Location"]
    thing = things[0]["@iot.id"]
    hist = op.post("/HistoricalLocations", json={"time": "2024-05-01T10:00:00+02:00", "Thing": {"@iot.id": thing},
                                                 "Locations": [{"@iot.id": loc.json()["@iot.id"]}]})
    assert hist.status_code == 201 and hist.json()["time"] == "2024-05-01T08:00:00Z"
    times = sorted(h["time"] for h in anon.get(f"/Things('{thing}')/HistoricalLocations").json()["value"])
    assert len(times) == 2 and times[0] == "2024-05-01T08:00:00Z"
    resp = op.post("/HistoricalLocations", json={"time": "2024-05-01T10:00:00Z", "Thing": {"@iot.id": thing}})
    assert resp.status_code == 400 and resp.json()["detail"].startswith("Locations: missing")
    prop = op.post("/ObservedProperties", json=datastream_body()["ObservedProperty"]).json()["@iot.id"]
    stream = op.post(f"/ObservedProperties('{prop}')/Datastreams",
                     json=datastream_body(Thing={"@iot.id": thing}, ObservedProperty=None))
    assert stream.status_code == 400  # given twice: it is nested in that ObservedProperty
    body = {k: v for k, v in datastream_body(Thing={"@iot.id": thing}).items() if k != "ObservedProperty"}
    stream = op.post(f"/ObservedProperties('{prop}')/Datastreams", json=body)
    assert stream.status_code == 201, stream.text
    assert anon.get(f"/Datastreams('{stream.json()['@iot.id']}')/ObservedProperty").json()["@iot.id"] == prop


def test_patch_keeps_unit_members_it_leaves_out_and_ignores_an_id(op, anon):
    made = op.post("/Things", json=thing_body(Datastreams=[datastream_body()])).json()["@iot.id"]
    stream = anon.get(f"/Things('{made}')/Datastreams").json()["value"][0]["@iot.id"]
    assert op.patch(f"/Datastreams('{stream}')", json={"unitOfMeasurement": {"name": "Celsius"}}).status_code == 200
    assert anon.get(f"/Datastreams('{stream}')").json()["unitOfMeasurement"] == {
        "name": "Celsius", "symbol": "Cel", "definition": "http://unitsofmeasure.org/ucum.html#para-30"}
    assert op.patch(f"/Things('{made}')", json={"@iot.id": "other", "name": "after"}).status_code == 200
    assert anon.get(f"/Things('{made}')").json()["name"] == "after"
    assert anon.get("/Things('other')").status_code == 404
