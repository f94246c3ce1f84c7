"""OGC 18-088 Annex A.1, SensorThings API Sensing Core, tested over HTTP from outside.

One test per requirement of the entity-control-information, the eight entity classes and the
resource path, written from the requirement's text (18-088 clauses 8 and 9.2); each docstring
names the requirement's URI. Every entity of every set is inspected; navigation links are
followed for the first few entities of each set (the rest only have to carry them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.api.conformance import data
from tests.api.conformance.sta import REQ, ROOT, SETS, Sta, path

pytestmark = pytest.mark.integration

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
# 18-088 Table 13 lists "some of the valueCodes"; the full set is O&M 2.0's (ISO 19156 Table 3).
OBSERVATION_TYPES = {OM + t for t in ("OM_CategoryObservation", "OM_ComplexObservation", "OM_CountObservation",
                                      "OM_DiscreteCoverageObservation", "OM_GeometryObservation", "OM_Measurement",
                                      "OM_Observation", "OM_PointCoverageObservation", "OM_TemporalObservation",
                                      "OM_TimeSeriesObservation", "OM_TruthObservation")}
# Mandatory properties (18-088 Tables 3-10, "One (mandatory)").
MANDATORY = {
    "Things": ("name", "description"),
    "Locations": ("name", "description", "encodingType", "location"),
    "HistoricalLocations": ("time",),
    "Datastreams": ("name", "description", "unitOfMeasurement", "observationType"),
    "Sensors": ("name", "description", "encodingType", "metadata"),
    "ObservedProperties": ("name", "definition", "description"),
    "Observations": ("phenomenonTime", "result", "resultTime"),
    "FeaturesOfInterest": ("name", "description", "encodingType", "feature"),
}
# Direct relations (18-088 Tables 4-11): name -> to-many?
RELATIONS = {
    "Things": {"Locations": True, "HistoricalLocations": True, "Datastreams": True},
    "Locations": {"Things": True, "HistoricalLocations": True},
    "HistoricalLocations": {"Thing": False, "Locations": True},
    "Datastreams": {"Thing": False, "Sensor": False, "ObservedProperty": False, "Observations": True},
    "Sensors": {"Datastreams": True},
    "ObservedProperties": {"Datastreams": True},
    "Observations": {"Datastream": False, "FeatureOfInterest": False},
    "FeaturesOfInterest": {"Observations": True},
}
FOLLOW = 5  # entities per set whose navigation links are followed


def is_instant(text: object) -> bool:
    """An ISO 8601 time string (TM_Instant)."""
    if not isinstance(text, str):
        return False
    try:
        data.parse_time(text)
    except ValueError:
        return False
    return True


def is_time_object(text: object) -> bool:
    """TM_Object: an instant or an interval "start/end"."""
    return isinstance(text, str) and all(is_instant(part) for part in text.split("/")) and text.count("/") <= 1


def is_geojson(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("type"), str)


def check_types(entity_set: str, e: dict[str, Any]) -> None:
    """The data types 18-088 gives each property."""
    ident = e["@iot.id"]
    for name in ("name", "description", "encodingType", "definition"):
        if name in MANDATORY[entity_set]:
            assert isinstance(e[name], str), f"{entity_set}({ident}).{name} is not a string: {e[name]!r}"
    if "properties" in e:
        assert e["properties"] is None or isinstance(e["properties"], dict), f"{entity_set}({ident}).properties"
    if entity_set == "Locations":
        assert is_geojson(e["location"]), f"Locations({ident}).location is not GeoJSON"
    if entity_set == "FeaturesOfInterest":
        assert is_geojson(e["feature"]), f"FeaturesOfInterest({ident}).feature is not GeoJSON"
    if entity_set == "HistoricalLocations":
        assert is_instant(e["time"]), f"HistoricalLocations({ident}).time: {e['time']!r}"
    if entity_set == "Datastreams":
        uom = e["unitOfMeasurement"]
        assert isinstance(uom, dict) and {"name", "symbol", "definition"} <= set(uom), f"Datastreams({ident})"
        assert e["observationType"] in OBSERVATION_TYPES, f"Datastreams({ident}).observationType"
        if e["observationType"].endswith("OM_TruthObservation"):
            # "When a Datastream does not have a unit of measurement (e.g., a OM_TruthObservation type),
            # the corresponding unitOfMeasurement properties SHALL have null values."
            assert uom == {"name": None, "symbol": None, "definition": None}, f"Datastreams({ident}) {uom}"
        for opt in ("phenomenonTime", "resultTime"):
            if e.get(opt) is not None:
                assert is_time_object(e[opt]) and "/" in e[opt], f"Datastreams({ident}).{opt} not a TM_Period"
        if e.get("observedArea") is not None:
            assert is_geojson(e["observedArea"]), f"Datastreams({ident}).observedArea"
    if entity_set == "Observations":
        assert is_time_object(e["phenomenonTime"]), f"Observations({ident}).phenomenonTime"
        assert e["resultTime"] is None or is_instant(e["resultTime"]), f"Observations({ident}).resultTime"


def check_properties(anon: Sta, entity_set: str) -> list[dict[str, Any]]:
    entities = anon.all(path(entity_set))
    assert entities, f"{entity_set} is empty: nothing to inspect"
    for e in entities:
        missing = [p for p in MANDATORY[entity_set] if p not in e]
        assert not missing, f"{entity_set}({e.get('@iot.id')}) lacks mandatory {missing}"
        check_types(entity_set, e)
    return entities


def check_relations(anon: Sta, entity_set: str) -> None:
    entities = anon.all(path(entity_set))
    assert entities
    for i, e in enumerate(entities):
        for rel, many in RELATIONS[entity_set].items():
            link = e.get(f"{rel}@iot.navigationLink")
            assert isinstance(link, str) and link, f"{entity_set}({e['@iot.id']}) lacks {rel}@iot.navigationLink"
            if i >= FOLLOW:
                continue
            r = anon.http.get(link if "://" in link else f"{ROOT}/{link}")
            assert r.status_code == 200, f"{link} -> {r.status_code}: {r.text[:200]}"
            body = r.json()
            if many:
                assert isinstance(body.get("value"), list), f"{link}: not a collection"
            else:
                assert "@iot.id" in body, f"{link}: not an entity"


def test_datamodel_entity_control_information_common_control_information(anon: Sta, served) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/entity-control-information/common-control-information

    Each entity has @iot.id (unique within its set), an absolute @iot.selfLink that retrieves it,
    and navigation links.
    """
    for entity_set in SETS:
        entities = anon.all(path(entity_set))
        ids = [e.get("@iot.id") for e in entities]
        assert None not in ids, f"an entity of {entity_set} has no @iot.id"
        assert len(set(ids)) == len(ids), f"{entity_set} ids are not unique"
        for i, e in enumerate(entities):
            link = e.get("@iot.selfLink")
            assert isinstance(link, str) and link.startswith(served.url + ROOT + "/"), \
                f"{entity_set}({e['@iot.id']}) selfLink not absolute: {link!r}"
            assert any(k.endswith("@iot.navigationLink") for k in e), f"{entity_set}({e['@iot.id']}) no links"
            if i < FOLLOW:
                assert anon.json(link)["@iot.id"] == e["@iot.id"], f"{link} serves another entity"


@pytest.mark.parametrize("entity_set", SETS)
def test_datamodel_properties(anon: Sta, entity_set: str) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/thing/properties
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/location/properties
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/historical-location/properties
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/datastream/properties
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/sensor/properties
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/observed-property/properties
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/observation/properties
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/feature-of-interest/properties

    "Each <entity> SHALL have the mandatory properties and MAY have the optional properties listed"
    (18-088 Tables 3, 5, 7, 9, 11, 13, 15, 17), with their data types.
    """
    check_properties(anon, entity_set)


@pytest.mark.parametrize("entity_set", SETS)
def test_datamodel_relations(anon: Sta, entity_set: str) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/thing/relations
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/location/relations
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/historical-location/relations
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/datastream/relations
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/sensor/relations
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/observed-property/relations
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/observation/relations
    http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/feature-of-interest/relations

    "Each <entity> SHALL have the direct relation between [it] and other entity types listed":
    a navigationLink per relation, which answers an entity (to-one) or a collection (to-many).
    """
    check_relations(anon, entity_set)


def test_datamodel_thing_properties_of_a_registry_device(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/thing/properties

    A Thing is a device: its name from the registry; properties carry gemeente / wijk / buurt (issue 8).
    """
    thing = anon.json(path("Things", data.LIGHT))
    assert thing["name"] == "Lichtmast Centrum 1"
    props = thing["properties"]
    assert (props["gemeente"], props["wijk"], props["buurt"]) == ("GM0626", "WK062600", "BU06260000")


def test_datamodel_location_properties_of_a_registry_device(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/location/properties

    A device's Location is its registry point as GeoJSON.
    """
    locations = anon.json(path("Things", data.LIGHT, "Locations"))["value"]
    assert len(locations) == 1
    loc = locations[0]
    assert loc["encodingType"] in ("application/geo+json", "application/vnd.geo+json")
    geometry = loc["location"].get("geometry", loc["location"])
    assert geometry == {"type": "Point", "coordinates": [4.4455, 52.1279]}


def test_datamodel_datastream_properties_units_and_types(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/datastream/properties

    unitOfMeasurement "SHOULD follow UCUM"; booleans are truth observations with null units.
    """
    dim = anon.json(path("Datastreams", data.LIGHT_DIM))
    assert dim["unitOfMeasurement"]["symbol"] == "%"
    assert dim["observationType"] == OM + "OM_Measurement"
    failure = anon.json(path("Datastreams", data.LIGHT_FAILURE))
    assert failure["observationType"] == OM + "OM_TruthObservation"
    assert failure["unitOfMeasurement"] == {"name": None, "symbol": None, "definition": None}


def test_datamodel_observation_properties_values(anon: Sta, served) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/observation/properties

    The Observations of a Datastream are the stored readings: phenomenonTime and result.
    """
    got = [(data.time_us(o["phenomenonTime"]), o["result"])
           for o in anon.all(path("Datastreams", data.LIGHT_DIM, "Observations"), **{"$orderby": "phenomenonTime"})]
    assert got == [(s.time_us, s.value) for s in data.series(served.base, data.LIGHT_DIM)]


# --- Resource path (18-088 9.2): one requirement, its eight usages -------------------------------------


def test_resource_path_to_entities_usage_1_service_root(anon: Sta, served) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 1: the service root lists each entity set (name, url) and serverSettings.conformance.
    """
    root = anon.json(ROOT)
    listed = {v["name"]: v["url"] for v in root["value"]}
    assert set(SETS) <= set(listed), f"missing sets: {set(SETS) - set(listed)}"
    for url in listed.values():
        assert isinstance(anon.json(url if "://" in url else f"{ROOT}/{url}")["value"], list)
    conformance = root["serverSettings"]["conformance"]
    assert isinstance(conformance, list) and all(isinstance(c, str) for c in conformance)
    for cls in ("datamodel", "resource-path", "request-data", "create-update-delete"):
        assert any(c == REQ + cls or c.startswith(REQ + cls + "/") for c in conformance), f"{cls} not declared"


def test_resource_path_to_entities_usage_2_collection(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 2: SERVICE_ROOT/ENTITY_SET answers {"value": [...]} with the entities of the set.
    """
    body = anon.json(path("Things"))
    assert isinstance(body["value"], list) and body["value"]
    assert data.LIGHT in anon.ids(path("Things"))


def test_resource_path_to_entities_usage_3_entity(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 3: ENTITY_SET(ID) answers the entity with all its properties.
    """
    e = anon.json(path("Datastreams", data.LIGHT_DIM))
    assert e["@iot.id"] == data.LIGHT_DIM
    assert set(MANDATORY["Datastreams"]) <= set(e)


def test_resource_path_to_entities_usage_4_property(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 4: .../PROPERTY_NAME answers {"name": value}; a complex property's parts by further
    composition; a null single-valued property answers 204 No Content.
    """
    assert anon.json(path("Things", data.LIGHT, "name")) == {"name": "Lichtmast Centrum 1"}
    assert anon.json(path("Datastreams", data.LIGHT_DIM, "unitOfMeasurement", "symbol")) == {"symbol": "%"}
    r = anon.get(path("Datastreams", data.LIGHT_FAILURE, "unitOfMeasurement", "symbol"))
    assert r.status_code == 204, f"null property -> {r.status_code}: {r.text[:200]}"


def test_resource_path_to_entities_usage_5_value(anon: Sta, served) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 5: .../PROPERTY_NAME/$value answers the raw value (text/plain; ISO 8601 for times).
    """
    r = anon.get(path("Things", data.LIGHT, "name", "$value"))
    assert r.status_code == 200 and r.text == "Lichtmast Centrum 1"
    first = data.series(served.base, data.LIGHT_DIM)[0]
    r = anon.get(path("Observations", f"{data.LIGHT_DIM}.{first.time_us}", "phenomenonTime", "$value"))
    assert r.status_code == 200 and data.time_us(r.text.strip()) == first.time_us


def test_resource_path_to_entities_usage_6_navigation_property(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 6: ENTITY_SET(ID)/LINK_NAME answers the related entity or entities.
    """
    assert anon.json(path("Datastreams", data.LIGHT_DIM, "Thing"))["@iot.id"] == data.LIGHT
    assert data.LIGHT_DIM in anon.ids(path("Things", data.LIGHT, "Datastreams"))
    assert len(anon.all(path("Datastreams", data.LIGHT_DIM, "Observations"))) == data.N_DIM


def test_resource_path_to_entities_usage_7_association_link(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 7: .../LINK_NAME/$ref answers {"value": [{"@iot.selfLink": ...}]}: only selfLinks.
    """
    refs = anon.all(path("Things", data.LIGHT, "Datastreams", "$ref"))
    assert refs and all(set(r) == {"@iot.selfLink"} for r in refs), refs[:3]
    full = {e["@iot.selfLink"] for e in anon.all(path("Things", data.LIGHT, "Datastreams"))}
    assert {r["@iot.selfLink"] for r in refs} == full
    obs_refs = anon.all(path("Datastreams", data.LIGHT_DIM, "Observations", "$ref"))
    assert len(obs_refs) == data.N_DIM and all(set(r) == {"@iot.selfLink"} for r in obs_refs)


def test_resource_path_to_entities_usage_8_nested_resource_path(anon: Sta, served) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities

    Usage 8: navigation extended with ids, properties or links: Datastreams(1)/Observations(1),
    .../Observations(1)/resultTime, .../Observations(1)/FeatureOfInterest.
    """
    first = data.series(served.base, data.LIGHT_DIM)[0]
    obs = f"{data.LIGHT_DIM}.{first.time_us}"
    nested = path("Datastreams", data.LIGHT_DIM, f"Observations('{obs}')")
    e = anon.json(nested)
    assert e["@iot.id"] == obs and e["result"] == first.value
    t = anon.json(nested + "/phenomenonTime")
    assert data.time_us(t["phenomenonTime"]) == first.time_us
    foi = anon.json(nested + "/FeatureOfInterest")
    assert is_geojson(foi["feature"])
    assert anon.json(path("Things", data.LIGHT, f"Datastreams('{data.LIGHT_DIM}')", "Sensor"))["@iot.id"]


def test_historical_location_time_is_iso(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel/historical-location/properties

    A device's HistoricalLocation says when it was known at its Location.
    """
    hls = anon.json(path("Things", data.LIGHT, "HistoricalLocations"))["value"]
    assert len(hls) >= 1
    t = data.parse_time(hls[0]["time"])
    assert t <= dt.datetime.now(dt.UTC)
