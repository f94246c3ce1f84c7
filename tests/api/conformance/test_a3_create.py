"""OGC 18-088 Annex A.3.1.1 (Sensing Entity Creation), over HTTP as an authenticated operator.

create-entity, link-to-existing-entities, deep-insert, deep-insert-status-code and
historical-location-auto-creation (18-088 clause 10.2 and 8.2.3), each test naming its URI; plus
this service's own rules for writes (operators only; registry entities are read-only; Observations
for registry Datastreams pass the ingest's validation).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conformance import cud, data
from tests.api.conformance.cud import create, get, ref
from tests.api.conformance.sta import Sta, path

pytestmark = pytest.mark.integration


def test_create_update_delete_create_entity(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/create-entity

    POST a single entity to each collection: 201 Created (or 204) with a Location header holding
    the new entity's selfLink, which serves what was posted.
    """
    simple: dict[str, dict[str, Any]] = {"Things": cud.thing(), "Locations": cud.location(), "Sensors": cud.sensor(),
                                         "ObservedProperties": cud.observed_property(),
                                         "FeaturesOfInterest": cud.feature()}
    made = {}
    for entity_set, body in simple.items():
        made[entity_set] = create(operator, entity_set, body)
        got = get(operator, path(entity_set, made[entity_set]))
        assert {k: got[k] for k in body} == body, f"{entity_set}: {got}"
    ds = create(operator, "Datastreams", cud.datastream(Thing=ref(made["Things"]), Sensor=ref(made["Sensors"]),
                                                       ObservedProperty=ref(made["ObservedProperties"])))
    assert get(operator, path("Datastreams", ds))["unitOfMeasurement"]["symbol"] == "Cel"
    when = cud.recent()
    obs = create(operator, "Observations", {"phenomenonTime": when, "result": 21.5, "Datastream": ref(ds),
                                            "FeatureOfInterest": ref(made["FeaturesOfInterest"])})
    got = get(operator, path("Observations", obs))
    assert got["result"] == 21.5 and data.time_us(got["phenomenonTime"]) == data.time_us(when)
    hl = create(operator, "HistoricalLocations", {"time": when, "Thing": ref(made["Things"]),
                                                  "Locations": [ref(made["Locations"])]})
    assert get(operator, path("HistoricalLocations", hl, "Thing"))["@iot.id"] == made["Things"]


def test_create_update_delete_create_entity_at_a_navigation_link(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/create-entity

    "If the target URL for the collection is a navigationLink, the new entity is automatically
    linked to the entity containing the navigationLink."
    """
    t, ds = cud.linked_datastream(operator)
    ds2 = create(operator, path("Things", t, "Datastreams"),
                 cud.datastream(Sensor=cud.sensor("second"), ObservedProperty=cud.observed_property("second")))
    assert get(operator, path("Datastreams", ds2, "Thing"))["@iot.id"] == t
    obs = create(operator, path("Datastreams", ds, "Observations"), {"phenomenonTime": cud.recent(), "result": 1.0})
    assert get(operator, path("Observations", obs, "Datastream"))["@iot.id"] == ds


@pytest.mark.parametrize("body", [
    pytest.param({"Sensor": cud.sensor(), "ObservedProperty": cud.observed_property()}, id="datastream-no-thing"),
    pytest.param({"Thing": cud.thing(), "ObservedProperty": cud.observed_property()}, id="datastream-no-sensor"),
    pytest.param({"Thing": cud.thing(), "Sensor": cud.sensor()}, id="datastream-no-observed-property"),
    pytest.param({"Thing": ref("no-such-thing"), "Sensor": cud.sensor(), "ObservedProperty": cud.observed_property()},
                 id="datastream-unknown-thing"),
])
def test_create_update_delete_create_entity_integrity_constraints(operator: httpx.Client,
                                                                   body: dict[str, Any]) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/create-entity

    Table 24: a Datastream SHALL link to a Thing, a Sensor and an ObservedProperty; a request that
    breaks that fails (4xx) and creates nothing.
    """
    before = cud.counts(operator)
    r = operator.post(path("Datastreams"), json=cud.datastream(**body))
    assert r.status_code in (400, 404, 409, 422), f"-> {r.status_code}: {r.text[:200]}"
    assert r.status_code < 500
    assert cud.counts(operator) == before


def test_create_update_delete_create_entity_observation_needs_a_datastream(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/create-entity

    Table 24: an Observation SHALL link to a Datastream.
    """
    r = operator.post(path("Observations"), json={"phenomenonTime": cud.recent(), "result": 1.0})
    assert r.status_code == 400, f"-> {r.status_code}: {r.text[:200]}"


def test_create_update_delete_create_entity_feature_of_interest_from_location(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/create-entity

    Special cases 1 and 2: an Observation posted without a FeatureOfInterest gets one made from the
    Thing's Location (and the next one links to that same one); without resultTime it is null.
    """
    t, ds = cud.linked_datastream(operator)
    first = create(operator, "Observations", {"phenomenonTime": cud.recent(90), "result": 2.0, "Datastream": ref(ds)})
    foi = get(operator, path("Observations", first, "FeatureOfInterest"))
    loc = get(operator, path("Things", t, "Locations"))["value"][0]["location"]
    assert foi["feature"].get("geometry", foi["feature"]) == loc.get("geometry", loc)
    second = create(operator, "Observations", {"phenomenonTime": cud.recent(30), "result": 3.0, "Datastream": ref(ds)})
    assert get(operator, path("Observations", second, "FeatureOfInterest"))["@iot.id"] == foi["@iot.id"]
    assert get(operator, path("Observations", first))["resultTime"] is None


def test_create_update_delete_link_to_existing_entities(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/link-to-existing-entities

    A new entity links to existing ones given by their ids in the navigation properties.
    """
    t = create(operator, "Things", cud.thing())
    s = create(operator, "Sensors", cud.sensor())
    o = create(operator, "ObservedProperties", cud.observed_property())
    f = create(operator, "FeaturesOfInterest", cud.feature())
    loc = create(operator, "Locations", cud.location())
    ds = create(operator, "Datastreams", cud.datastream(Thing=ref(t), Sensor=ref(s), ObservedProperty=ref(o)))
    assert get(operator, path("Datastreams", ds, "Thing"))["@iot.id"] == t
    assert get(operator, path("Datastreams", ds, "Sensor"))["@iot.id"] == s
    assert get(operator, path("Datastreams", ds, "ObservedProperty"))["@iot.id"] == o
    assert ds in {d["@iot.id"] for d in get(operator, path("Sensors", s, "Datastreams"))["value"]}
    obs = create(operator, "Observations", {"phenomenonTime": cud.recent(), "result": 124, "Datastream": ref(ds),
                                            "FeatureOfInterest": ref(f)})
    assert get(operator, path("Observations", obs, "FeatureOfInterest"))["@iot.id"] == f
    t2 = create(operator, "Things", {**cud.thing("placed"), "Locations": [ref(loc)]})
    assert [x["@iot.id"] for x in get(operator, path("Things", t2, "Locations"))["value"]] == [loc]


def spec_example_thing() -> dict[str, Any]:
    """18-088 clause 10.2.1.2's deep-insert example (times made recent)."""
    return {
        "name": "oven", "description": "This an oven with a temperature datastream.",
        "Locations": [{"name": "CCIT", "description": "Calgary Centre for Innovative Technologies",
                       "encodingType": "application/geo+json",
                       "location": {"type": "Feature", "geometry": {"type": "Point", "coordinates": [10, 10]}}}],
        "Datastreams": [{
            **cud.datastream(), "name": "oven temperature",
            "observedArea": {"type": "Polygon", "coordinates": [[[100, 0], [101, 0], [101, 1], [100, 1], [100, 0]]]},
            "Observations": [{"phenomenonTime": cud.recent(), "result": 70.4,
                              "FeatureOfInterest": {"name": "CCIT #361", "description": "Noah's dad's office",
                                                    "encodingType": "application/geo+json",
                                                    "feature": {"type": "Point", "coordinates": [10, 10]}}}],
            "ObservedProperty": cud.observed_property("DewPoint Temperature"),
            "Sensor": {"name": "DS18B20", "description": "DS18B20 is an air temperature sensor",
                       "encodingType": "application/pdf",
                       "metadata": "http://datasheets.maxim-ic.com/en/ds/DS18B20.pdf"},
        }],
    }


def test_create_update_delete_deep_insert(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/deep-insert

    A Thing posted with its Locations and Datastreams (each with Sensor, ObservedProperty and
    Observations with a FeatureOfInterest inline): every entity is created and related.
    """
    t = create(operator, "Things", spec_example_thing())
    got = get(operator, path("Things", t), **{"$expand": "Locations,Datastreams($expand=Sensor,ObservedProperty,"
                                               "Observations($expand=FeatureOfInterest))"})
    assert got["name"] == "oven" and got["Locations"][0]["name"] == "CCIT"
    (ds,) = got["Datastreams"]
    assert ds["name"] == "oven temperature" and ds["Sensor"]["name"] == "DS18B20"
    assert ds["ObservedProperty"]["name"] == "DewPoint Temperature"
    (obs,) = ds["Observations"]
    assert obs["result"] == 70.4 and obs["FeatureOfInterest"]["name"] == "CCIT #361"


@pytest.mark.parametrize("broken", ["sensor-metadata", "observation-time", "location-encoding"])
def test_create_update_delete_deep_insert_failure_creates_nothing(operator: httpx.Client, broken: str) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/deep-insert

    "On failure, the service SHALL NOT create any of the entities": a deep insert with one bad
    entity deep inside answers 400 and leaves every set as it was.
    """
    body = spec_example_thing()
    if broken == "sensor-metadata":
        del body["Datastreams"][0]["Sensor"]["metadata"]
    elif broken == "observation-time":
        body["Datastreams"][0]["Observations"][0]["phenomenonTime"] = "not a time"
    else:
        del body["Locations"][0]["encodingType"]
    before = cud.counts(operator)
    r = operator.post(path("Things"), json=body)
    assert r.status_code == 400, f"-> {r.status_code}: {r.text[:200]}"
    assert cud.counts(operator) == before


def test_create_update_delete_deep_insert_status_code(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/deep-insert-status-code

    "Upon successful completion the service SHALL respond with 201 Created", with a Location
    header holding the URL of the created entity.
    """
    t = create(operator, "Things", spec_example_thing(), status=(201,))
    assert get(operator, path("Things", t))["name"] == "oven"


def test_create_update_delete_historical_location_auto_creation(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/historical-location-auto-creation

    "When a Thing has a new Location, a new HistoricalLocation SHALL be created and added to the
    Thing automatically by the service": on creation with a Location, on a Location posted to the
    Thing's Locations, and on a PATCH that links another Location.
    """
    t = create(operator, "Things", {**cud.thing(), "Locations": [cud.location(4.46)]})
    hls = get(operator, path("Things", t, "HistoricalLocations"), **{"$expand": "Locations"})["value"]
    first_loc = get(operator, path("Things", t, "Locations"))["value"][0]["@iot.id"]
    assert len(hls) == 1 and [x["@iot.id"] for x in hls[0]["Locations"]] == [first_loc]
    second = create(operator, path("Things", t, "Locations"), cud.location(4.47))
    hls = get(operator, path("Things", t, "HistoricalLocations"), **{"$expand": "Locations"})["value"]
    assert len(hls) == 2 and any(second in [x["@iot.id"] for x in h["Locations"]] for h in hls)
    third = create(operator, "Locations", cud.location(4.48))
    r = operator.patch(path("Things", t), json={"Locations": [ref(third)]})
    assert r.status_code in (200, 204), f"PATCH -> {r.status_code}: {r.text[:200]}"
    hls = get(operator, path("Things", t, "HistoricalLocations"), **{"$expand": "Locations"})["value"]
    assert len(hls) == 3 and any(third in [x["@iot.id"] for x in h["Locations"]] for h in hls)


# --- this service's rules for writes -----------------------------------------------------------------


def test_writes_need_an_operator(served, viewer: httpx.Client) -> None:
    """Writes are for authenticated operators: anonymous -> 401 with WWW-Authenticate, viewer -> 403."""
    with httpx.Client(base_url=served.url) as anon:
        for method, url in (("POST", path("Things")), ("PATCH", path("Things", "api-1")),
                            ("PUT", path("Things", "api-1")), ("DELETE", path("Things", "api-1"))):
            r = anon.request(method, url, json=cud.thing())
            assert r.status_code == 401, f"anonymous {method} {url} -> {r.status_code}"
            assert "www-authenticate" in r.headers
        r = anon.post(path("Things"), json=cud.thing(), auth=("conf-operator", "wrong-password-1234"))
        assert r.status_code == 401
    r = viewer.post(path("Things"), json=cud.thing())
    assert r.status_code == 403, f"viewer POST -> {r.status_code}"


def test_registry_entities_are_read_only(operator: httpx.Client, anon: Sta) -> None:
    """PATCH / PUT / DELETE of a registry-derived entity answer 409 (the registry is the source of
    truth for field devices) and change nothing."""
    before = anon.json(path("Things", data.LIGHT))
    for method, url in (("PATCH", path("Things", data.LIGHT)), ("PUT", path("Things", data.LIGHT)),
                        ("DELETE", path("Things", data.LIGHT)), ("PATCH", path("Datastreams", data.LIGHT_DIM)),
                        ("DELETE", path("Sensors", "street_light"))):
        r = operator.request(method, url, json={"name": "renamed", "description": "x"})
        assert r.status_code == 409, f"{method} {url} -> {r.status_code}: {r.text[:200]}"
        assert "registry" in r.text
    assert anon.json(path("Things", data.LIGHT)) == before


def test_observations_for_registry_datastreams_pass_the_ingest_validation(operator: httpx.Client, anon: Sta) -> None:
    """An Observation posted to a registry Datastream is stored like a reading (and served);
    a value of the wrong type or a time outside the ingest's window answers 400 naming the problem."""
    when = cud.recent(5)
    create(operator, "Observations", {"phenomenonTime": when, "result": 50.0, "Datastream": ref(data.LIGHT_DIM)})
    obs = anon.all(path("Datastreams", data.LIGHT_DIM, "Observations"), **{"$filter": f"phenomenonTime eq {when}"})
    assert [o["result"] for o in obs] == [50.0]
    for result, t in ((True, cud.recent(4)), ("bright", cud.recent(3)), (50.0, cud.recent(30 * 86400))):
        r = operator.post(path("Observations"), json={"phenomenonTime": t, "result": result,
                                                      "Datastream": ref(data.LIGHT_DIM)})
        assert r.status_code == 400, f"result {result!r} at {t} -> {r.status_code}: {r.text[:200]}"
    assert len(anon.all(path("Datastreams", data.LIGHT_DIM, "Observations"))) == data.N_DIM + 1
