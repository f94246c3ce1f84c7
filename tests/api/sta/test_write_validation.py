"""Validation of write bodies, JSON Patch, and Observations as points (API and registry Datastreams)."""

from __future__ import annotations

import time

import pytest

from api.sta.json_patch import apply_patch
from api.sta.model import EntitySet
from api.sta.observation_writer import api_observation, observation_time, registry_observation
from api.sta.write_validation import WriteError, check_properties, instant, interval, split_body, time_us
from api.sta.writes import RegistryIndex
from core.registry import load
from smartcity.data import demo_registry_path

E = EntitySet
OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
DATASTREAM = {"name": "n", "description": "d", "unitOfMeasurement": {"name": "a", "symbol": "b", "definition": "c"},
              "observationType": OM + "OM_Measurement"}


def error(fn, *args, **kwargs) -> WriteError:
    with pytest.raises(WriteError) as caught:
        fn(*args, **kwargs)
    return caught.value


@pytest.mark.parametrize(("entity_set", "missing"), [
    (E.THINGS, "description"), (E.LOCATIONS, "encodingType"), (E.HISTORICAL_LOCATIONS, "time"),
    (E.DATASTREAMS, "unitOfMeasurement"), (E.SENSORS, "metadata"), (E.OBSERVED_PROPERTIES, "definition"),
    (E.FEATURES_OF_INTEREST, "feature"),
])
def test_mandatory_properties_per_set(entity_set, missing):
    full = {"name": "n", "description": "d", "encodingType": "application/geo+json", "time": "2025-01-01T00:00:00Z",
            "unitOfMeasurement": DATASTREAM["unitOfMeasurement"], "observationType": DATASTREAM["observationType"],
            "metadata": "m", "definition": "https://x", "feature": {"type": "Point", "coordinates": [4, 52]},
            "location": {"type": "Point", "coordinates": [4, 52]}}
    if entity_set is E.SENSORS:
        full["encodingType"] = "application/pdf"
    given = {k: v for k, v in full.items() if k != missing}
    exc = error(check_properties, entity_set, given, "", full=True)
    assert exc.status == 400 and str(exc).startswith(f"{missing}: missing")
    patched = check_properties(entity_set, given, "", full=False)  # PATCH needs none of them
    assert missing not in patched


def test_unknown_properties_and_types_are_named():
    assert str(error(split_body, E.THINGS, {"name": "x", "desciption": "y"}, "Things[0]")).startswith(
        "Things[0].desciption: unknown property")
    assert split_body(E.THINGS, {"name": "x", "@iot.selfLink": "s", "Datastreams@iot.navigationLink": "l",
                                 "Datastreams": []}, "") == ({"name": "x"}, {"Datastreams": []})
    assert "must be a JSON object" in str(error(split_body, E.THINGS, [1], ""))
    assert str(error(check_properties, E.THINGS, {"name": ""}, "", full=False)) == "name: must not be empty"
    exc = error(check_properties, E.DATASTREAMS, {**DATASTREAM, "observationType": "OM_Measurement"}, "", full=True)
    assert str(exc).startswith("observationType: must be one of")
    exc = error(check_properties, E.DATASTREAMS, {**DATASTREAM, "unitOfMeasurement": {"name": 1}}, "", full=True)
    assert str(exc).startswith("unitOfMeasurement.name: must be a string or null")


def test_times_and_intervals():
    assert time_us("1970-01-01T00:00:01.5Z", "t") == 1_500_000
    assert instant("2025-01-01T01:00:00+01:00", "t") == "2025-01-01T00:00:00Z"
    assert "time zone" in str(error(time_us, "2025-01-01T00:00:00", "t"))
    assert "not an ISO 8601 time" in str(error(time_us, "yesterday", "t"))
    assert "1677-2262" in str(error(time_us, "2300-01-01T00:00:00Z", "t"))
    assert interval("2025-01-01T00:00:00Z/2025-01-02T00:00:00Z", "p") == "2025-01-01T00:00:00Z/2025-01-02T00:00:00Z"
    assert "ends before it starts" in str(error(interval, "2025-01-02T00:00:00Z/2025-01-01T00:00:00Z", "p"))


@pytest.mark.parametrize("geometry", [
    {"type": "Point", "coordinates": "x"}, {"type": "Circle", "coordinates": [1, 2]}, {"type": "Point"},
    {"type": "Polygon", "coordinates": [[[0, 0], [1]]]}, "POINT(1 2)",
])
def test_bad_geometries_are_400(geometry):
    body = {"name": "n", "description": "d", "encodingType": "application/geo+json", "location": geometry}
    exc = error(check_properties, E.LOCATIONS, body, "", full=True)
    assert exc.status == 400 and str(exc).startswith("location:")


def test_json_patch():
    doc = {"name": "a", "properties": {"list": [1, 2]}}
    ops = [{"op": "replace", "path": "/name", "value": "b"}, {"op": "add", "path": "/properties/list/-", "value": 3},
           {"op": "copy", "from": "/name", "path": "/description"}, {"op": "move", "from": "/properties/list",
                                                                       "path": "/properties/moved"},
           {"op": "remove", "path": "/properties/moved/0"}, {"op": "test", "path": "/name", "value": "b"}]
    assert apply_patch(doc, ops) == {"name": "b", "description": "b", "properties": {"moved": [2, 3]}}
    assert doc == {"name": "a", "properties": {"list": [1, 2]}}  # the input is untouched
    assert error(apply_patch, doc, [{"op": "test", "path": "/name", "value": "z"}]).status == 409
    assert "operation 1" in str(error(apply_patch, doc, [{"op": "add", "path": "/x", "value": 1},
                                                         {"op": "remove", "path": "/nope"}]))
    assert "unknown op" in str(error(apply_patch, doc, [{"op": "frobnicate", "path": "/name"}]))
    assert "array of operations" in str(error(apply_patch, doc, {"op": "add"}))


def test_observation_time_rules():
    assert observation_time({"result": 1}, "", 42) == 42  # no phenomenonTime: the server's time
    assert observation_time({"result": 1, "phenomenonTime": "1970-01-01T00:00:01Z",
                             "resultTime": "1970-01-01T00:00:01Z"}, "", 0) == 1_000_000
    assert error(observation_time, {"result": 1, "phenomenonTime": "1970-01-01T00:00:01Z",
                                    "resultTime": "1970-01-01T00:00:02Z"}, "", 0).status == 501
    assert error(observation_time, {"result": 1, "parameters": {"a": 1}}, "", 0).status == 501
    assert error(observation_time, {"result": 1, "phenomenonTime": "2025-01-01T00:00:00Z/2025-01-02T00:00:00Z"},
                 "", 0).status == 501
    assert str(error(observation_time, {}, "Observations[0]", 0)).startswith("Observations[0].result: missing")


def test_api_observation_lines_per_type():
    line = api_observation("api-1", OM + "OM_Measurement", 5, 2, "").line
    assert line == "sta_observation,datastream=api-1 result=2.0 5"
    assert api_observation("api-1", OM + "OM_CountObservation", 5, 2, "").line.endswith("result_count=2i 5")
    assert api_observation("api-1", OM + "OM_TruthObservation", 5, False, "").line.endswith("result_truth=false 5")
    assert api_observation("api-1", OM + "OM_CategoryObservation", 5, 'a "b"', "").line.endswith(
        'result_category="a \\"b\\"" 5')
    for kind, value in (("OM_Measurement", True), ("OM_Measurement", "1"), ("OM_CountObservation", 1.5),
                        ("OM_TruthObservation", 0), ("OM_CategoryObservation", 3)):
        assert str(error(api_observation, "api-1", OM + kind, 5, value, "")).startswith("result:")


def test_registry_observation_writes_what_the_ingest_writes():
    index = RegistryIndex(load(demo_registry_path()))
    stream = index.get(E.DATASTREAMS, "vs-sl-101.power")
    now = time.time()
    when = int((now - 10) * 1_000_000)
    write = registry_observation(index.table, stream, when, 12, where="", now=now)
    spec = index.table.specs["vs-sl-101/power"]
    assert write.line == f"{spec.prefix}power=12.0 {when}"
    assert write.time_us == when and write.result == 12.0
    assert "too_late" in str(error(registry_observation, index.table, stream, when - 8 * 86400 * 10**6, 1,
                                   where="", now=now))
    assert "future" in str(error(registry_observation, index.table, stream, when + 3600 * 10**6, 1, where="", now=now))
    assert "wrong_type" in str(error(registry_observation, index.table, stream, when, "12", where="", now=now))
    failure = index.get(E.DATASTREAMS, "vs-sl-101.lamp_failure")
    assert "wrong_type" in str(error(registry_observation, index.table, failure, when, 1, where="", now=now))
    assert registry_observation(index.table, failure, when, True, where="", now=now).line.endswith(
        f"lamp_failure=true {when}")


def test_edge_values_are_400_not_500():
    assert "1677-2262" in str(error(time_us, "0001-01-01T00:00:00+05:00", "t"))
    assert str(error(api_observation, "api-1", OM + "OM_Measurement", 5, 10**400, "")).startswith("result:")
    assert str(error(api_observation, "api-1", OM + "OM_CountObservation", 5, 2**63, "")).startswith("result:")
