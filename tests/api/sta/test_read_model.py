"""Units of the read side: resource paths, registry entities, the entity graph and its layers, filters."""

from __future__ import annotations

import dataclasses

import pytest

from api.sta.entity_query import select_entities
from api.sta.graph import EntityGraph
from api.sta.graph_cache import GraphCache
from api.sta.model import Entity, EntitySet, SeriesRef, Source
from api.sta.paging import next_link
from api.sta.query.parser import parse_filter
from api.sta.registry_entities import registry_entities
from api.sta.resource_path import PathError, Step, parse_path
from core.kinds import Classification
from core.registry import WatchedRegistry, load
from tests.api.sta.conftest import CLASSIFIED

E = EntitySet


def test_paths_parse_into_steps():
    p = parse_path(["Datastreams('vs-sl-101.power')", "Thing", "Locations"])
    assert p.steps == (Step(E.DATASTREAMS, None, "vs-sl-101.power", True), Step(E.THINGS, "Thing", None, False),
                       Step(E.LOCATIONS, "Locations", None, True))
    assert p.is_collection and p.target is E.LOCATIONS
    assert parse_path(["Things('it''s')", "name", "$value"]).steps[0].ident == "it's"
    assert parse_path(["Things('a%2Fb')"]).steps[0].ident == "a/b"  # encoded '/' stays inside the id
    ref = parse_path(["Things('x')", "Datastreams", "$ref"])
    assert ref.ref and ref.is_collection
    prop = parse_path(["Things('x')", "name", "$value"])
    assert prop.prop == "name" and prop.value
    assert parse_path(["Things", ""]).is_collection  # trailing slash
    member = parse_path(["Datastreams('x')", "unitOfMeasurement", "symbol", "$value"])
    assert (member.prop, member.keys, member.value) == ("unitOfMeasurement", ("symbol",), True)


@pytest.mark.parametrize(("segments", "status"), [
    (["Toasters"], 404),
    (["Things", "Datastreams"], 400),           # navigation from a collection
    (["Things('x')", "Thing"], 404),            # Things have no Thing
    (["Datastreams('x')", "Thing('y')"], 400),  # an id after a to-one navigation
    (["Things('x')", "$ref", "name"], 400),
    (["Things('x')", "name", "$ref"], 404),
    (["Things('x')", "id", "other"], 404),
    (["Things", "name"], 400),
    (["Things('a'b')"], 400),
    (["Things('x')"] + ["Datastreams('y')", "Thing"] * 9, 400),
    ([], 404),
])
def test_bad_paths(segments, status):
    with pytest.raises(PathError) as info:
        parse_path(segments)
    assert info.value.status == status


def test_registry_entities_are_complete_and_mark_the_classified_device(sta_registry_file):
    entities = registry_entities(load(sta_registry_file), "2026-01-01T00:00:00Z")
    by_key = {(e.set, e.id): e for e in entities}
    hidden = [e for e in entities if not e.public]
    assert {e.id.split(".")[0] for e in hidden} == {CLASSIFIED}
    assert {e.set for e in hidden} == {E.THINGS, E.LOCATIONS, E.HISTORICAL_LOCATIONS, E.FEATURES_OF_INTEREST,
                                        E.DATASTREAMS}
    ds = by_key[(E.DATASTREAMS, "vs-sl-101.energy")]
    assert ds.series == SeriesRef("street_light", "energy", "device", "vs-sl-101")
    assert ds.props["unitOfMeasurement"]["symbol"] == "kW.h"
    assert ds.links == {"Thing": "vs-sl-101", "Sensor": "street_light", "ObservedProperty": "energy"}
    assert by_key[(E.HISTORICAL_LOCATIONS, "vs-sl-101.0")].props["time"] == "2026-01-01T00:00:00Z"
    assert by_key[(E.SENSORS, "street_light")].public  # other street lights are public


def test_a_sensor_used_only_by_classified_devices_is_not_public(sta_registry_file):
    registry = load(sta_registry_file)
    assert any(d.kind == "parking_spot" for d in registry.devices.values())
    devices = {i: dataclasses.replace(d, classification=Classification.GEHEIM) if d.kind == "parking_spot" else d
               for i, d in registry.devices.items()}
    entities = registry_entities(dataclasses.replace(registry, devices=devices), "t")
    graph = EntityGraph(entities)
    assert graph.get(E.SENSORS, "parking_spot") is None
    assert graph.get(E.OBSERVED_PROPERTIES, "occupied") is None
    assert graph.get(E.SENSORS, "street_light") is not None


def _api(entity_set, ident, links, public=True):
    return Entity(entity_set, ident, {"name": ident}, links, public, Source.API,
                  SeriesRef("sta_observation", "result", "datastream", ident) if entity_set is E.DATASTREAMS else None)


def test_graph_links_both_ways_and_drops_links_to_hidden_entities(sta_registry_file):
    base = EntityGraph(registry_entities(load(sta_registry_file), "t"))
    thing = base.get(E.THINGS, "vs-sl-101")
    assert [d.id for d in base.many(thing, "Datastreams")][:2] == ["vs-sl-101.dim_level", "vs-sl-101.power"]
    sensor = base.get(E.SENSORS, "street_light")
    streams = base.link_ids(sensor, "Datastreams")
    assert "vs-sl-101.power" in streams and not any(s.startswith(CLASSIFIED) for s in streams)
    top = EntityGraph([_api(E.DATASTREAMS, "api-1", {"Thing": "vs-sl-101", "Sensor": "street_light"}),
                       _api(E.DATASTREAMS, "api-2", {"Thing": CLASSIFIED}),  # a hidden Thing: link dropped
                       _api(E.THINGS, "api-3", {"Datastreams": ("api-1",)}, public=False)], base)
    assert top.get(E.THINGS, "api-3") is None
    assert "api-1" in top.link_ids(top.get(E.THINGS, "vs-sl-101"), "Datastreams")
    assert "api-1" not in base.link_ids(base.get(E.THINGS, "vs-sl-101"), "Datastreams")  # base untouched
    assert top.one(top.get(E.DATASTREAMS, "api-1"), "Thing").id == "vs-sl-101"
    assert top.one(top.get(E.DATASTREAMS, "api-2"), "Thing") is None
    assert top.link_ids(top.get(E.SENSORS, "street_light"), "Datastreams")[-1] == "api-1"
    assert [e.id for e in top.entities(E.DATASTREAMS)][-2:] == ["api-1", "api-2"]
    assert top.size() == base.size() + 2


def test_equality_filters_answer_from_the_index_and_agree_with_a_scan(sta_registry_file):
    base = EntityGraph(registry_entities(load(sta_registry_file), "t"))
    graph = EntityGraph([_api(E.DATASTREAMS, "api-1", {"Thing": "vs-sl-101"})], base)
    for text in ("Thing/properties/wijk eq 'WK062600'", "Thing/properties/wijk eq 'WK062600' and name ne 'x'",
                 "'WK062600' eq Thing/properties/wijk", "@iot.id eq 'api-1'", "id eq 'nope'"):
        node = parse_filter(text)
        everything = graph.entities(E.DATASTREAMS)
        fast = select_entities(graph, E.DATASTREAMS, everything, node, (), whole_set=True)
        slow = select_entities(graph, E.DATASTREAMS, everything, node, ())
        assert [e.id for e in fast] == [e.id for e in slow], text
    wijk = select_entities(graph, E.DATASTREAMS, graph.entities(E.DATASTREAMS),
                           parse_filter("Thing/properties/wijk eq 'WK062600'"), (), whole_set=True)
    assert "api-1" in [e.id for e in wijk]


class _Store:
    def __init__(self):
        self.version = 0
        self.made: list[Entity] = []
        self.calls = 0

    def entities(self):
        self.calls += 1
        return list(self.made)


def test_graph_cache_rebuilds_the_layers_only_when_their_source_changes(sta_registry_file):
    store = _Store()
    derived_calls = []

    def derive(base):
        derived_calls.append(1)
        return []

    cache = GraphCache(WatchedRegistry(sta_registry_file), store, derive)
    first = cache.get()
    assert cache.get() is first and store.calls == 1 and len(derived_calls) == 1
    store.made.append(_api(E.THINGS, "api-9", {}))
    store.version = 1
    second = cache.get()
    assert second is not first and second.get(E.THINGS, "api-9") is not None
    assert len(derived_calls) == 1  # the registry layer was kept
    assert second.get(E.THINGS, "vs-sl-101") is first.get(E.THINGS, "vs-sl-101")


def test_next_link_changes_only_the_paging_option():
    link = next_link("https://x/v1.1", "/Things", [("$filter", "name eq 'a b'"), ("$skip", "5"), ("$top", "5")],
                     {"$skip": "10"})
    assert link == "https://x/v1.1/Things?$filter=name%20eq%20'a%20b'&$top=5&$skip=10"
    token = next_link("https://x/v1.1", "/Observations", [("$skip", "3")], {"$skip": None, "$skiptoken": "t&1"})
    assert token == "https://x/v1.1/Observations?$skiptoken=t%261"
