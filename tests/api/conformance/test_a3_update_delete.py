"""OGC 18-088 Annex A.3.1.2-3 (Sensing Entity Update and Deletion), as an authenticated operator.

update-entity (PATCH), update-entity-put, update-entity-jsonpatch and delete-entity with the
integrity constraints of Table 25 (18-088 clauses 10.3 and 10.4), each test naming its URI.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.conformance import cud
from tests.api.conformance.cud import create, get, ref
from tests.api.conformance.sta import REQ, ROOT, path

pytestmark = pytest.mark.integration


def declared(op: httpx.Client, requirement: str) -> bool:
    conformance = get(op, ROOT)["serverSettings"]["conformance"]
    return any(c in (REQ + requirement, REQ + requirement.split("/", maxsplit=1)[0]) for c in conformance)


def patch(op: httpx.Client, url: str, body: object) -> httpx.Response:
    r = op.patch(url, json=body)
    assert r.status_code in (200, 204), f"PATCH {url} -> {r.status_code}: {r.text[:300]}"
    return r


def test_create_update_delete_update_entity(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/update-entity

    PATCH replaces the properties given and leaves the others alone; 200 or 204; the id in the
    payload is ignored; an update of an entity that does not exist fails.
    """
    t = create(operator, "Things", cud.thing("before"))
    patch(operator, path("Things", t), {"description": "This thing is an oven."})
    got = get(operator, path("Things", t))
    assert (got["name"], got["description"], got["properties"]) == ("before", "This thing is an oven.",
                                                                     {"purpose": "test"})
    patch(operator, path("Things", t), {"@iot.id": "someone-else", "name": "after"})
    assert get(operator, path("Things", t))["name"] == "after"
    assert operator.get(path("Things", "someone-else")).status_code == 404
    r = operator.patch(path("Things", "api-no-such-thing"), json={"name": "x"})
    assert r.status_code == 404, f"PATCH of a missing entity -> {r.status_code}"


def test_create_update_delete_update_entity_complex_property(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/update-entity

    "Missing properties of the containing entity or complex property SHALL NOT be directly
    altered": PATCH of unitOfMeasurement/name keeps its symbol and definition.
    """
    _, ds = cud.linked_datastream(operator)
    patch(operator, path("Datastreams", ds), {"unitOfMeasurement": {"name": "Celsius"}})
    uom = get(operator, path("Datastreams", ds))["unitOfMeasurement"]
    assert uom == {"name": "Celsius", "symbol": "Cel", "definition": "http://qudt.org/vocab/unit/DEG_C"}


def test_create_update_delete_update_entity_binding(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/update-entity

    Binding information replaces a single-valued relationship (Datastream/Sensor) and adds to a
    collection-valued one; related entities inline (without an id) fail the request.
    """
    _, ds = cud.linked_datastream(operator)
    s2 = create(operator, "Sensors", cud.sensor("replacement"))
    patch(operator, path("Datastreams", ds), {"Sensor": ref(s2)})
    assert get(operator, path("Datastreams", ds, "Sensor"))["@iot.id"] == s2
    before = cud.counts(operator)
    r = operator.patch(path("Datastreams", ds), json={"Sensor": cud.sensor("inline")})
    assert r.status_code == 400, f"PATCH with an inline entity -> {r.status_code}: {r.text[:200]}"
    assert cud.counts(operator) == before
    assert get(operator, path("Datastreams", ds, "Sensor"))["@iot.id"] == s2


def test_create_update_delete_update_entity_put(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/update-entity-put

    PUT replaces every structural property with the body's (an omitted optional one is cleared);
    omitting a mandatory property is 400. A service without PUT answers 501.
    """
    t = create(operator, "Things", cud.thing("put me"))
    r = operator.put(path("Things", t), json={"name": "replaced", "description": "all new"})
    if not declared(operator, "create-update-delete/update-entity-put") and r.status_code == 501:
        return  # "Services that do not support PUT SHALL respond with an HTTP code 501"
    assert r.status_code in (200, 204), f"PUT -> {r.status_code}: {r.text[:200]}"
    got = get(operator, path("Things", t))
    assert (got["name"], got["description"]) == ("replaced", "all new")
    assert not got.get("properties"), f"PUT kept the omitted properties: {got.get('properties')}"
    r = operator.put(path("Things", t), json={"description": "no name"})
    assert r.status_code == 400, f"PUT without the mandatory name -> {r.status_code}"
    assert get(operator, path("Things", t))["name"] == "replaced"


def test_create_update_delete_update_entity_jsonpatch(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/update-entity-jsonpatch

    Optional in the standard; this service implements it, so it must declare it, and PATCH with
    application/json-patch+json applies RFC 6902 operations.
    """
    conformance = get(operator, ROOT)["serverSettings"]["conformance"]
    assert REQ + "create-update-delete/update-entity-jsonpatch" in conformance, \
        "JSON Patch is implemented but not declared in serverSettings.conformance"
    t = create(operator, "Things", cud.thing("json patch"))
    r = operator.patch(path("Things", t), content=b'[{"op": "replace", "path": "/name", "value": "patched"},'
                                                  b' {"op": "add", "path": "/properties/colour", "value": "red"}]',
                       headers={"content-type": "application/json-patch+json"})
    assert r.status_code in (200, 204), f"JSON PATCH -> {r.status_code}: {r.text[:200]}"
    got = get(operator, path("Things", t))
    assert got["name"] == "patched" and got["properties"] == {"purpose": "test", "colour": "red"}


def test_create_update_delete_delete_entity(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/delete-entity

    DELETE removes the entity (its URL then answers 404, as status-code requires) and its
    relations; deleting what is not there fails.
    """
    for entity_set, body in (("Things", cud.thing()), ("Locations", cud.location()), ("Sensors", cud.sensor()),
                             ("ObservedProperties", cud.observed_property()), ("FeaturesOfInterest", cud.feature())):
        ident = create(operator, entity_set, body)
        r = operator.delete(path(entity_set, ident))
        assert r.status_code in (200, 204), f"DELETE {entity_set} -> {r.status_code}: {r.text[:200]}"
        assert operator.get(path(entity_set, ident)).status_code in (404, 410)
    r = operator.delete(path("Things", "api-no-such-thing"))
    assert r.status_code == 404


def test_create_update_delete_delete_entity_integrity_constraints(operator: httpx.Client) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete/delete-entity

    Table 25: deleting a Datastream deletes its Observations; a Thing its Datastreams and
    HistoricalLocations; a Sensor / ObservedProperty its Datastreams; a Location its
    HistoricalLocations; an Observation nothing else. Relations to the deleted entity go.
    """
    t, ds = cud.linked_datastream(operator)
    obs = create(operator, "Observations", {"phenomenonTime": cud.recent(), "result": 5.0, "Datastream": ref(ds)})
    foi = get(operator, path("Observations", obs, "FeatureOfInterest"))["@iot.id"]
    assert operator.delete(path("Observations", obs)).status_code in (200, 204)
    assert operator.get(path("Observations", obs)).status_code == 404
    assert operator.get(path("Datastreams", ds)).status_code == 200
    assert operator.get(path("FeaturesOfInterest", foi)).status_code == 200

    obs = create(operator, "Observations", {"phenomenonTime": cud.recent(20), "result": 6.0, "Datastream": ref(ds)})
    assert operator.delete(path("Datastreams", ds)).status_code in (200, 204)
    assert operator.get(path("Observations", obs)).status_code == 404
    assert ds not in {d["@iot.id"] for d in get(operator, path("Things", t, "Datastreams"))["value"]}

    t, ds = cud.linked_datastream(operator)
    hls = [h["@iot.id"] for h in get(operator, path("Things", t, "HistoricalLocations"))["value"]]
    locs = [x["@iot.id"] for x in get(operator, path("Things", t, "Locations"))["value"]]
    assert hls and locs
    assert operator.delete(path("Things", t)).status_code in (200, 204)
    assert operator.get(path("Datastreams", ds)).status_code == 404
    assert all(operator.get(path("HistoricalLocations", h)).status_code == 404 for h in hls)

    _, ds = cud.linked_datastream(operator)
    sensor = get(operator, path("Datastreams", ds, "Sensor"))["@iot.id"]
    assert operator.delete(path("Sensors", sensor)).status_code in (200, 204)
    assert operator.get(path("Datastreams", ds)).status_code == 404

    _, ds = cud.linked_datastream(operator)
    prop = get(operator, path("Datastreams", ds, "ObservedProperty"))["@iot.id"]
    assert operator.delete(path("ObservedProperties", prop)).status_code in (200, 204)
    assert operator.get(path("Datastreams", ds)).status_code == 404

    t = create(operator, "Things", {**cud.thing(), "Locations": [cud.location()]})
    loc = get(operator, path("Things", t, "Locations"))["value"][0]["@iot.id"]
    hls = [h["@iot.id"] for h in get(operator, path("Things", t, "HistoricalLocations"))["value"]]
    assert operator.delete(path("Locations", loc)).status_code in (200, 204)
    assert all(operator.get(path("HistoricalLocations", h)).status_code == 404 for h in hls)
    assert get(operator, path("Things", t, "Locations"))["value"] == []
