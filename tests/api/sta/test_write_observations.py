"""Observations POSTed through SensorThings: to API Datastreams (sta_observation) and to registry
Datastreams (the kind's measurement, through the ingest's own validation), checked in InfluxDB itself."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.operators.auth import Role
from api.operators.users import write_users_file
from api.settings import ApiSettings
from api.sta.model import iso_time
from tests.api.sta.conftest import serve

pytestmark = pytest.mark.integration

OPERATOR = ("op", "operator-password-1")
OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
POINT = {"type": "Point", "coordinates": [4.43, 52.13]}


@pytest.fixture
def base(sta_settings: ApiSettings, tmp_path: Path) -> Iterator[str]:
    users = tmp_path / "operators.toml"
    write_users_file(users, [(OPERATOR[0], Role.OPERATOR, OPERATOR[1])])
    for url in serve(create_app(dataclasses.replace(sta_settings, operators_path=str(users)))):
        yield f"{url}/v1.1"


@pytest.fixture
def op(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, auth=OPERATOR, timeout=20) as client:
        yield client


@pytest.fixture
def anon(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=20) as client:
        yield client


def make_stream(op: httpx.Client, kind: str = "OM_Measurement", with_location: bool = True) -> str:
    thing: dict[str, Any] = {"name": "station", "description": "on the roof"}
    if with_location:
        thing["Locations"] = [{"name": "roof", "description": "roof", "encodingType": "application/geo+json",
                               "location": POINT}]
    thing["Datastreams"] = [{
        "name": "s", "description": "d", "unitOfMeasurement": {"name": None, "symbol": None, "definition": None},
        "observationType": OM + kind,
        "Sensor": {"name": "n", "description": "d", "encodingType": "text/html", "metadata": "https://example.org"},
        "ObservedProperty": {"name": "p", "definition": "https://example.org/p", "description": "d"}}]
    made = op.post("/Things", json=thing)
    assert made.status_code == 201, made.text
    return str(op.get(f"/Things('{made.json()['@iot.id']}')/Datastreams").json()["value"][0]["@iot.id"])


def points(influx, measurement: str) -> list[dict[str, Any]]:
    series = influx.query(f'SELECT * FROM "{measurement}"', epoch="u")
    return [row for s in series for row in s.rows()]


def test_observation_of_an_api_datastream_is_stored_and_read_back(op, anon, influx):
    stream = make_stream(op)
    t = 1_700_000_000_123_456
    resp = op.post(f"/Datastreams('{stream}')/Observations", json={"phenomenonTime": iso_time(t), "result": 21})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["@iot.id"] == f"{stream}.{t}"
    assert resp.headers["location"] == body["@iot.selfLink"]
    assert body["result"] == 21.0
    assert [(p["datastream"], p["time"], p["result"]) for p in points(influx, "sta_observation")] == [(stream, t, 21.0)]
    got = anon.get(f"/Datastreams('{stream}')/Observations").json()["value"]
    assert [(o["@iot.id"], o["result"]) for o in got] == [(f"{stream}.{t}", 21.0)]
    # The FeatureOfInterest was made from the Thing's Location, once, and is reused.
    foi = anon.get(f"/Observations('{stream}.{t}')/FeatureOfInterest").json()
    assert foi["feature"] == POINT
    op.post("/Observations", json={"phenomenonTime": iso_time(t + 1), "result": 22.5,
                                   "Datastream": {"@iot.id": stream}})
    assert anon.get(f"/Observations('{stream}.{t + 1}')/FeatureOfInterest").json()["@iot.id"] == foi["@iot.id"]


def test_results_are_checked_against_the_observation_type(op, influx):
    truth = make_stream(op, "OM_TruthObservation")
    resp = op.post("/Observations", json={"result": 1, "Datastream": {"@iot.id": truth}})
    assert resp.status_code == 400 and resp.json()["detail"].startswith("result:")
    assert op.post("/Observations", json={"result": True, "Datastream": {"@iot.id": truth}}).status_code == 201
    count = make_stream(op, "OM_CountObservation")
    assert op.post("/Observations", json={"result": 2.5, "Datastream": {"@iot.id": count}}).status_code == 400
    assert op.post("/Observations", json={"result": 7, "Datastream": {"@iot.id": count}}).status_code == 201
    fields = {k for p in points(influx, "sta_observation") for k, v in p.items() if v is not None}
    assert {"result_truth", "result_count"} <= fields
    resp = op.post("/Observations", json={"result": 1, "Datastream": {"@iot.id": truth}, "validTime": "x"})
    assert resp.status_code == 501 and "validTime" in resp.json()["detail"]
    assert op.post("/Observations", json={"Datastream": {"@iot.id": truth}}).status_code == 400


def test_without_a_location_there_is_no_feature_of_interest_to_make(op):
    stream = make_stream(op, with_location=False)
    resp = op.post("/Observations", json={"result": 1, "Datastream": {"@iot.id": stream}})
    assert resp.status_code == 400 and "FeatureOfInterest" in resp.json()["detail"]
    foi = {"name": "canal", "description": "water", "encodingType": "application/geo+json", "feature": POINT}
    resp = op.post("/Observations", json={"result": 1, "Datastream": {"@iot.id": stream}, "FeatureOfInterest": foi})
    assert resp.status_code == 201, resp.text


def test_observation_of_a_registry_datastream_goes_through_the_ingest(op, anon, influx):
    now = time.time()
    t = int((now - 60) * 1_000_000)
    resp = op.post("/Datastreams('vs-sl-101.dim_level')/Observations",
                   json={"phenomenonTime": iso_time(t), "result": 40})
    assert resp.status_code == 201, resp.text
    (row,) = points(influx, "street_light")
    assert (row["device"], row["gateway"], row["wijk"], row["time"], row["dim_level"]) == (
        "vs-sl-101", "gw-vs-01", "WK062600", t, 40.0)
    got = anon.get("/Datastreams('vs-sl-101.dim_level')/Observations").json()["value"]
    assert [o["result"] for o in got] == [40.0]
    old = iso_time(int((now - 30 * 86400) * 1_000_000))
    resp = op.post("/Datastreams('vs-sl-101.dim_level')/Observations", json={"phenomenonTime": old, "result": 1})
    assert resp.status_code == 400 and "too_late" in resp.json()["detail"]
    resp = op.post("/Datastreams('vs-sl-101.lamp_failure')/Observations", json={"result": 3})
    assert resp.status_code == 400 and "wrong_type" in resp.json()["detail"]
    resp = op.post("/Datastreams('vs-sl-101.lamp_failure')/Observations", json={"result": True})
    assert resp.status_code == 201
    assert op.post("/Datastreams('vs-sl-999.power')/Observations", json={"result": 1}).status_code == 404
    observation = f"vs-sl-101.dim_level.{t}"
    assert op.delete(f"/Observations('{observation}')").status_code == 409
    assert op.patch(f"/Observations('{observation}')", json={"result": 2}).status_code == 409


def test_patch_and_delete_an_observation(op, anon, influx):
    stream = make_stream(op)
    t = 1_700_000_000_000_000
    ident = op.post("/Observations", json={"phenomenonTime": iso_time(t), "result": 1,
                                           "Datastream": {"@iot.id": stream}}).json()["@iot.id"]
    resp = op.patch(f"/Observations('{ident}')", json={"result": 5})
    assert resp.status_code == 200 and resp.json()["result"] == 5.0
    assert anon.get(f"/Observations('{ident}')").json()["result"] == 5.0
    resp = op.patch(f"/Observations('{ident}')", json={"phenomenonTime": iso_time(t + 1)})
    assert resp.status_code == 501
    assert op.delete(f"/Observations('{ident}')").status_code == 200
    assert anon.get(f"/Observations('{ident}')").status_code == 404
    assert op.delete(f"/Observations('{ident}')").status_code == 404


def test_deleting_a_datastream_drops_its_observations(op, influx):
    stream = make_stream(op)
    other = make_stream(op)
    for s in (stream, other):
        assert op.post("/Observations", json={"result": 1, "Datastream": {"@iot.id": s}}).status_code == 201
    assert op.delete(f"/Datastreams('{stream}')").status_code == 200
    assert [p["datastream"] for p in points(influx, "sta_observation")] == [other]


def test_deep_insert_with_observations_is_atomic_with_influxdb(op, anon, influxd):
    influxd.stop()
    thing = {"name": "t", "description": "d"}
    resp = op.post("/Things", json=thing)
    assert resp.status_code == 201  # no Observations: InfluxDB is not needed
    stream = make_stream(op)
    resp = op.post("/Observations", json={"result": 1, "Datastream": {"@iot.id": stream}})
    assert resp.status_code == 503
    assert "127.0.0.1" not in resp.text
    # The FeatureOfInterest it would have made is gone with the rolled-back transaction.
    fois = anon.get("/FeaturesOfInterest", params={"$top": "10000"}).json()["value"]
    assert not [f for f in fois if f["@iot.id"].startswith("api-")]


def test_count_sees_observations_posted_into_closed_days(op, anon):
    stream = make_stream(op)
    path = f"/Datastreams('{stream}')/Observations"
    assert op.post(path, json={"phenomenonTime": "2020-03-01T12:00:00Z", "result": 1}).status_code == 201
    assert anon.get(path, params={"$count": "true"}).json()["@iot.count"] == 1  # the closed day is cached now
    assert op.post(path, json={"phenomenonTime": "2020-03-01T13:00:00Z", "result": 2}).status_code == 201
    assert anon.get(path, params={"$count": "true"}).json()["@iot.count"] == 2


def test_count_after_a_feature_of_interest_took_the_observations(op, anon):
    stream = make_stream(op)
    path = f"/Datastreams('{stream}')/Observations"
    for hour in (10, 11):
        assert op.post(path, json={"phenomenonTime": f"2020-03-01T{hour}:00:00Z", "result": 1}).status_code == 201
    assert anon.get(path, params={"$count": "true"}).json()["@iot.count"] == 2
    foi = anon.get(f"/Observations('{stream}.1583056800000000')/FeatureOfInterest").json()["@iot.id"]
    assert op.delete(f"/FeaturesOfInterest('{foi}')").status_code == 200
    assert anon.get(path, params={"$count": "true"}).json()["@iot.count"] == 0


def test_result_time_is_null_unless_posted_and_patch_keeps_or_sets_it(op, anon):
    """18-088 8.2.7: an Observation posted without resultTime has a null one; one posted with it keeps it."""
    stream = make_stream(op)
    t = 1_700_000_000_000_000
    bare = op.post(f"/Datastreams('{stream}')/Observations", json={"phenomenonTime": iso_time(t), "result": 1})
    timed = op.post(f"/Datastreams('{stream}')/Observations",
                    json={"phenomenonTime": iso_time(t + 1), "resultTime": iso_time(t + 1), "result": 2})
    assert bare.json()["resultTime"] is None and timed.json()["resultTime"] == iso_time(t + 1)
    listed = {o["@iot.id"]: o["resultTime"]
              for o in anon.get(f"/Datastreams('{stream}')/Observations").json()["value"]}
    assert listed == {f"{stream}.{t}": None, f"{stream}.{t + 1}": iso_time(t + 1)}
    selected = anon.get(f"/Datastreams('{stream}')/Observations", params={"$select": "resultTime,result"})
    assert [o["resultTime"] for o in selected.json()["value"]] == [None, iso_time(t + 1)]
    # PATCH of the result leaves resultTime as it was; PATCH of resultTime sets it
    assert op.patch(f"/Observations('{stream}.{t}')", json={"result": 3}).json()["resultTime"] is None
    assert op.patch(f"/Observations('{stream}.{t + 1}')", json={"result": 4}).json()["resultTime"] == iso_time(t + 1)
    op.patch(f"/Observations('{stream}.{t}')", json={"resultTime": iso_time(t)})
    assert anon.get(f"/Observations('{stream}.{t}')").json()["resultTime"] == iso_time(t)
