"""The read routes of /v1.1 over the real graph, with a small in-memory ObservationStore.

The store fake keeps rows in lists and records its calls, so these tests can check what the routes
ask of it (one latest() call for the latest-per-Datastream expansion, point queries for
Observations('<id>')); test_read_influx.py runs the same routes against the real store and influxd.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from api.settings import ApiSettings
from api.sta import read_routes
from api.sta.aggregates import aggregate_datastreams, aggregate_things
from api.sta.graph_cache import GraphCache
from api.sta.model import Entity, EntitySet, SeriesRef, Source, iso_time, observation_id
from api.sta.observation_query import page_size
from api.sta.query.ast import Node, OrderItem
from api.sta.query.evaluate import matches
from api.sta.service_root import CONFORMANCE, MQTT_RECEIVE
from core.registry import WatchedRegistry
from tests.api.sta.conftest import CLASSIFIED, serve

T0 = 1_764_000_000_000_000  # 2025-11-24T16:00:00Z in microseconds
E = EntitySet


@dataclass(frozen=True, slots=True)
class FakeRow:
    datastream: str
    time_us: int
    result: Any


@dataclass(frozen=True, slots=True)
class FakePage:
    rows: list[FakeRow]
    next_token: str | None


@dataclass
class FakeObservations:
    """Rows per datastream id; the token is the offset (the real store's is a keyset)."""

    data: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _rows(self, series, where: Node | None) -> list[FakeRow]:
        rows = [FakeRow(ds, t, v) for ds, _ in series for t, v in self.data.get(ds, [])]
        if where is not None:
            rows = [r for r in rows if matches(where, lambda p, r=r: r.result if p == ("result",)
                                               else iso_time(r.time_us))]
        return rows

    def page(self, series, where, orderby: tuple[OrderItem, ...], top, skip, token) -> FakePage:  # noqa: PLR0917 - the store's signature
        self.calls.append(("page", [ds for ds, _ in series]))
        rows = sorted(self._rows(series, where), key=lambda r: (r.time_us, r.datastream))
        if orderby and orderby[0].descending:
            rows.reverse()
        start = int(token) if token else skip
        chunk = rows[start:start + top]
        return FakePage(chunk, str(start + top) if start + top < len(rows) else None)

    def count(self, series, where) -> int:
        self.calls.append(("count", [ds for ds, _ in series]))
        return len(self._rows(series, where))

    def get(self, datastream: str, ref: SeriesRef, time_us: int) -> FakeRow | None:
        self.calls.append(("get", datastream))
        return next((FakeRow(datastream, t, v) for t, v in self.data.get(datastream, []) if t == time_us), None)

    def latest(self, series) -> dict[str, FakeRow]:
        self.calls.append(("latest", [ds for ds, _ in series]))
        out = {}
        for ds, _ in series:
            rows = self.data.get(ds)
            if rows:
                t, v = max(rows)
                out[ds] = FakeRow(ds, t, v)
        return out


@dataclass
class FakeStore:
    """The metadata store's read interface: a version and the API-created entities."""

    version: int = 0
    made: list[Entity] = field(default_factory=list)

    def entities(self) -> list[Entity]:
        return list(self.made)


def _derived(base):
    return [*aggregate_datastreams(base), *aggregate_things(base)]


@pytest.fixture
def observations() -> FakeObservations:
    return FakeObservations({
        "vs-sl-101.power": [(T0, 40.5), (T0 + 1_000_000, 8.5), (T0 + 2_000_000, 9.0)],
        "vs-sl-101.dim_level": [(T0, 100.0)],
        f"{CLASSIFIED}.power": [(T0, 55.0)],
    })


@pytest.fixture
def meta() -> FakeStore:
    return FakeStore()


@pytest.fixture
def app(sta_registry_file, observations, meta) -> FastAPI:
    app = FastAPI()
    app.include_router(read_routes.router)
    app.state.settings = ApiSettings(str(sta_registry_file), public_url="https://data.example.nl")
    app.state.registry = WatchedRegistry(sta_registry_file)
    app.state.sta_graph = GraphCache(app.state.registry, meta, _derived)
    app.state.sta_observations = observations
    return app


@pytest.fixture
def client(app) -> httpx.Client:
    for url in serve(app):
        with httpx.Client(base_url=url, timeout=20) as c:
            yield c


ROOT = "https://data.example.nl/v1.1"


def ids(body: dict[str, Any]) -> list[str]:
    return [v["@iot.id"] for v in body["value"]]


def test_service_root_lists_the_sets_and_exactly_the_implemented_conformance(client):
    body = client.get("/v1.1").json()
    assert [v["name"] for v in body["value"]] == [s.value for s in EntitySet]
    assert body["value"][0]["url"] == f"{ROOT}/Things"
    # no MQTT endpoint configured: the extension is not claimed
    assert body["serverSettings"]["conformance"] == [c for c in CONFORMANCE if c != MQTT_RECEIVE]
    assert MQTT_RECEIVE not in body["serverSettings"]
    assert not any("batch" in c or "data-array" in c for c in body["serverSettings"]["conformance"])


def test_service_root_claims_the_mqtt_extension_with_its_endpoint_when_configured(app, client):
    app.state.settings = dataclasses.replace(app.state.settings, sta_mqtt_url="mqtt://data.example.nl:1883")
    body = client.get("/v1.1").json()
    assert body["serverSettings"]["conformance"] == list(CONFORMANCE)
    assert body["serverSettings"][MQTT_RECEIVE] == {"endpoints": ["mqtt://data.example.nl:1883"]}


def test_things_are_the_public_devices_with_codes_and_links(client, sta_registry_file):
    body = client.get("/v1.1/Things", params={"$top": "1000"}).json()
    things = {t["@iot.id"]: t for t in body["value"]}
    assert CLASSIFIED not in things
    assert "vs-sl-101" in things and "wijk.WK062600" in things  # devices, and the aggregates' wijk Things
    t = things["vs-sl-101"]
    assert t["properties"] == {"gemeente": "GM0626", "wijk": "WK062600", "buurt": "BU06260000",
                               "kind": "street_light", "gateway": "gw-vs-01"}
    assert t["@iot.selfLink"] == f"{ROOT}/Things('vs-sl-101')"
    assert t["Datastreams@iot.navigationLink"] == f"{ROOT}/Things('vs-sl-101')/Datastreams"
    assert set(t) >= {"name", "description", "Locations@iot.navigationLink",
                      "HistoricalLocations@iot.navigationLink"}


def test_classified_and_unknown_entities_answer_the_same_404(client):
    for entity_set, suffix in (("Things", ""), ("Locations", ""), ("FeaturesOfInterest", ""),
                               ("HistoricalLocations", ".0"), ("Datastreams", ".power")):
        hidden = client.get(f"/v1.1/{entity_set}('{CLASSIFIED}{suffix}')")
        unknown = client.get(f"/v1.1/{entity_set}('vs-xx-999{suffix}')")
        assert hidden.status_code == unknown.status_code == 404
        assert hidden.json() == {"detail": unknown.json()["detail"].replace("vs-xx-999", CLASSIFIED)}
    assert client.get(f"/v1.1/Observations('{CLASSIFIED}.power.{T0}')").status_code == 404


def test_classified_device_is_unreachable_through_navigation_filter_and_expand(client):
    sensor = client.get("/v1.1/Sensors('street_light')/Datastreams", params={"$top": "1000"}).json()
    assert ids(sensor) and not any(i.startswith(CLASSIFIED) for i in ids(sensor))
    found = client.get("/v1.1/Datastreams", params={"$filter": f"Thing/@iot.id eq '{CLASSIFIED}'"}).json()
    assert found["value"] == []
    wide = client.get("/v1.1/ObservedProperties('power')",
                      params={"$expand": "Datastreams($top=1000;$expand=Thing)"}).text
    assert CLASSIFIED not in wide
    allobs = client.get("/v1.1/Observations", params={"$top": "1000"}).json()
    assert all(not o["@iot.id"].startswith(CLASSIFIED) for o in allobs["value"])
    assert len(allobs["value"]) == 4


def test_datastream_units_definitions_and_types(client):
    power = client.get("/v1.1/Datastreams('vs-sl-101.power')").json()
    assert power["unitOfMeasurement"] == {"name": "watt", "symbol": "W", "definition": "http://qudt.org/vocab/unit/W"}
    assert power["observationType"].endswith("OM_Measurement")
    failure = client.get("/v1.1/Datastreams('vs-sl-101.lamp_failure')").json()
    assert failure["unitOfMeasurement"] == {"name": None, "symbol": None, "definition": None}
    assert failure["observationType"].endswith("OM_TruthObservation")
    prop = client.get("/v1.1/Datastreams('vs-sl-101.power')/ObservedProperty").json()
    assert prop["@iot.id"] == "power"
    assert prop["definition"] == "https://smartdatamodels.org/dataModel.Streetlighting/activePower"


def test_navigation_deep_paths_properties_value_and_ref(client):
    thing = client.get("/v1.1/Datastreams('vs-sl-101.power')/Thing").json()
    assert thing["@iot.id"] == "vs-sl-101"
    locs = client.get("/v1.1/Datastreams('vs-sl-101.power')/Thing/Locations").json()
    assert ids(locs) == ["vs-sl-101"]
    assert locs["value"][0]["location"]["type"] == "Point"
    assert locs["value"][0]["encodingType"] == "application/geo+json"
    one = client.get("/v1.1/Things('vs-sl-101')/Datastreams('vs-sl-101.power')").json()
    assert one["@iot.id"] == "vs-sl-101.power"
    assert client.get("/v1.1/Things('vs-sl-101')/Datastreams('ws-sl-101.power')").status_code == 404
    assert client.get("/v1.1/Things('vs-sl-101')/name").json() == {"name": "Lichtmast Centrum 1"}
    assert client.get("/v1.1/Datastreams('vs-sl-101.power')/unitOfMeasurement/symbol").json() == {"symbol": "W"}
    assert client.get("/v1.1/Things('vs-sl-101')/properties/wijk/$value").text == "WK062600"
    assert client.get("/v1.1/Things('vs-sl-101')/properties/colour").status_code == 404
    raw = client.get("/v1.1/Things('vs-sl-101')/name/$value")
    assert raw.text == "Lichtmast Centrum 1" and raw.headers["content-type"].startswith("text/plain")
    assert client.get("/v1.1/Things('vs-sl-101')/$ref").json() == {"@iot.selfLink": f"{ROOT}/Things('vs-sl-101')"}
    refs = client.get("/v1.1/Things('vs-sl-101')/Datastreams/$ref", params={"$top": "2"}).json()
    assert refs["value"] == [{"@iot.selfLink": f"{ROOT}/Datastreams('vs-sl-101.dim_level')"},
                             {"@iot.selfLink": f"{ROOT}/Datastreams('vs-sl-101.power')"}]
    assert "@iot.nextLink" in refs
    hist = client.get("/v1.1/Things('vs-sl-101')/HistoricalLocations").json()
    assert ids(hist) == ["vs-sl-101.0"]
    assert ids(client.get("/v1.1/HistoricalLocations('vs-sl-101.0')/Locations").json()) == ["vs-sl-101"]


def test_select_and_nested_expand(client):
    expand = "Datastreams($select=id;$orderby=id desc;$top=2;$count=true;$expand=Sensor)"
    body = client.get("/v1.1/Things('vs-sl-101')", params={"$select": "id,name", "$expand": expand}).json()
    assert set(body) == {"@iot.id", "name", "Datastreams", "Datastreams@iot.count"}
    assert body["Datastreams@iot.count"] == 6 + 5 * 2  # metrics, and hourly + daily of the numeric ones
    assert [d["@iot.id"] for d in body["Datastreams"]] == ["vs-sl-101.voltage.hourly", "vs-sl-101.voltage.daily"]
    assert body["Datastreams"][0]["Sensor"]["@iot.id"] == "street_light"
    assert set(body["Datastreams"][0]) == {"@iot.id", "Sensor"}


def test_filter_orderby_top_skip_count_and_next_link(client):
    params = {"$filter": "properties/wijk eq 'WK062600' and properties/kind eq 'street_light'",
              "$orderby": "name desc", "$top": "1", "$count": "true"}
    first = client.get("/v1.1/Things", params=params).json()
    assert first["@iot.count"] == 2  # vs-sl-101 and 103 (102 is classified)
    assert ids(first) == ["vs-sl-103"]
    link = first["@iot.nextLink"]
    assert link.startswith(f"{ROOT}/Things?") and "$skip=1" in link and "$count=true" in link
    parts = urlsplit(link)
    second = client.get(f"{parts.path}?{parts.query}").json()
    assert ids(second) == ["vs-sl-101"] and "@iot.nextLink" not in second


def test_filter_through_a_to_many_navigation_has_any_semantics(client):
    body = client.get("/v1.1/Things", params={
        "$filter": "Datastreams/ObservedProperty/@iot.id eq 'rain_intensity'", "$top": "1000"}).json()
    devices = [i for i in ids(body) if not i.startswith("wijk.")]
    assert devices and all(i.split("-")[1] == "rg" for i in devices)
    assert "wijk.WK062600" in ids(body)  # its aggregate Datastreams observe rain too


def test_filter_through_related_observations(client, observations):
    body = client.get("/v1.1/Things", params={"$filter": "Datastreams/Observations/result eq 8.5"}).json()
    assert ids(body) == ["vs-sl-101"]
    assert client.get("/v1.1/Things", params={"$filter": "Datastreams/Observations/result eq 55"}).json()["value"] \
        == []  # only the classified device has a 55
    streams = client.get("/v1.1/Datastreams", params={
        "$filter": "Thing/@iot.id eq 'vs-sl-101' and Observations/result gt 50"}).json()
    assert ids(streams) == ["vs-sl-101.dim_level"]
    foi = client.get("/v1.1/FeaturesOfInterest", params={"$filter": "Observations/result lt 10"}).json()
    assert ids(foi) == ["vs-sl-101"]
    mixed = client.get("/v1.1/Things", params={"$filter": "Datastreams/Observations/result eq 1 or name eq 'x'"})
    assert mixed.status_code == 501


def test_latest_per_datastream_of_a_wijk_is_one_latest_call(client, observations):
    expand = "Datastreams($expand=Observations($top=1;$orderby=phenomenonTime desc))"
    body = client.get("/v1.1/Things", params={"$filter": "properties/wijk eq 'WK062600'",
                                               "$expand": expand}).json()
    calls = [c for c in observations.calls if c[0] != "get"]
    assert [c[0] for c in calls] == ["latest"]
    assert f"{CLASSIFIED}.power" not in calls[0][1]
    thing = next(t for t in body["value"] if t["@iot.id"] == "vs-sl-101")
    power = next(d for d in thing["Datastreams"] if d["@iot.id"] == "vs-sl-101.power")
    assert power["Observations"] == [{
        "@iot.id": observation_id("vs-sl-101.power", T0 + 2_000_000),
        "@iot.selfLink": f"{ROOT}/Observations('vs-sl-101.power.{T0 + 2_000_000}')",
        "phenomenonTime": iso_time(T0 + 2_000_000), "resultTime": iso_time(T0 + 2_000_000), "result": 9.0,
        "Datastream@iot.navigationLink": f"{ROOT}/Observations('vs-sl-101.power.{T0 + 2_000_000}')/Datastream",
        "FeatureOfInterest@iot.navigationLink":
            f"{ROOT}/Observations('vs-sl-101.power.{T0 + 2_000_000}')/FeatureOfInterest"}]
    voltage = next(d for d in thing["Datastreams"] if d["@iot.id"] == "vs-sl-101.voltage")
    assert voltage["Observations"] == []


def test_observations_of_a_datastream_page_with_skiptoken(client, observations):
    first = client.get("/v1.1/Datastreams('vs-sl-101.power')/Observations", params={"$top": "2", "$count": "true"})
    body = first.json()
    assert body["@iot.count"] == 3
    assert [o["result"] for o in body["value"]] == [40.5, 8.5]
    link = body["@iot.nextLink"]
    assert link.startswith(f"{ROOT}/Datastreams('vs-sl-101.power')/Observations?") and "skiptoken=2" in link
    parts = urlsplit(link)
    rest = client.get(f"{parts.path}?{parts.query}").json()
    assert [o["result"] for o in rest["value"]] == [9.0] and "@iot.nextLink" not in rest


def test_observation_by_id_is_a_point_query_and_navigates(client, observations):
    ident = f"vs-sl-101.power.{T0 + 1_000_000}"
    body = client.get(f"/v1.1/Observations('{ident}')").json()
    assert body["result"] == 8.5
    assert [c for c in observations.calls if c[0] in ("page", "latest")] == []
    assert client.get(f"/v1.1/Observations('{ident}')/result/$value").text == "8.5"
    assert client.get(f"/v1.1/Observations('{ident}')/Datastream").json()["@iot.id"] == "vs-sl-101.power"
    assert client.get(f"/v1.1/Observations('{ident}')/FeatureOfInterest").json()["@iot.id"] == "vs-sl-101"
    assert client.get("/v1.1/Observations('vs-sl-101.power.1')").status_code == 404
    assert client.get("/v1.1/Observations('garbage')").status_code == 404
    other = f"/v1.1/Datastreams('vs-sl-101.dim_level')/Observations('{ident}')"
    assert client.get(other).status_code == 404  # an Observation of another Datastream
    assert client.get(f"/v1.1/Datastreams('vs-sl-101.power')/Observations('{ident}')").json()["result"] == 8.5
    expanded = client.get(f"/v1.1/Observations('{ident}')", params={"$expand": "FeatureOfInterest",
                                                                   "$select": "result"}).json()
    assert set(expanded) == {"result", "FeatureOfInterest"}


def test_observation_filter_splits_navigation_from_own_properties(client, observations):
    body = client.get("/v1.1/Observations", params={
        "$filter": "Datastream/Thing/@iot.id eq 'vs-sl-101' and result gt 9.5"}).json()
    assert [o["result"] for o in body["value"]] == [100.0, 40.5]  # time, then Datastream id
    page_calls = [c for c in observations.calls if c[0] == "page"]
    assert all(ds.startswith("vs-sl-101.") for ds in page_calls[-1][1])
    foi = client.get("/v1.1/FeaturesOfInterest('vs-sl-101')/Observations", params={"$top": "10"}).json()
    assert len(foi["value"]) == 4


def test_api_entities_link_to_registry_ones_and_the_graph_follows_the_store_version(client, app, meta):
    graph = app.state.sta_graph.get()
    assert app.state.sta_graph.get() is graph  # nothing changed: no rebuild
    assert client.get("/v1.1/Datastreams('api-1')").status_code == 404
    meta.made.append(Entity(E.DATASTREAMS, "api-1", {"name": "extra", "description": "d",
                                                      "unitOfMeasurement": {"name": None, "symbol": None,
                                                                            "definition": None},
                                                      "observationType": "x"},
                            {"Thing": "vs-sl-101", "Sensor": None, "ObservedProperty": None}, True, Source.API,
                            SeriesRef("sta_observation", "result", "datastream", "api-1")))
    meta.version = 1
    assert app.state.sta_graph.get() is not graph
    streams = ids(client.get("/v1.1/Things('vs-sl-101')/Datastreams", params={"$top": "100"}).json())
    assert "api-1" in streams
    assert client.get("/v1.1/Datastreams('api-1')/Thing").json()["@iot.id"] == "vs-sl-101"


def test_aggregate_datastreams_appear_with_interval_phenomenon_times(client, observations):
    observations.data["vs-sl-101.power.hourly"] = [(T0, {"mean": 1.0, "min": 1.0, "max": 1.0, "sum": 1.0,
                                                          "count": 1})]
    body = client.get("/v1.1/Datastreams('vs-sl-101.power.hourly')/Observations").json()
    assert body["value"][0]["phenomenonTime"] == f"{iso_time(T0)}/{iso_time(T0 + 3_600_000_000)}"
    wijk = client.get("/v1.1/Things('wijk.WK062600')/Datastreams", params={"$top": "1000"}).json()
    assert "wijk.WK062600.street_light.power.daily" in ids(wijk)


@pytest.mark.parametrize(("path", "params", "status", "says"), [
    ("/v1.1/Toasters", {}, 404, "Toasters"),
    ("/v1.1/Things", {"$filter": "name eq"}, 400, "$filter"),
    ("/v1.1/Things", {"$frobnicate": "1"}, 400, "$frobnicate"),
    ("/v1.1/Things", {"$select": "colour"}, 400, "colour"),
    ("/v1.1/Things", {"$expand": "Sensors"}, 400, "Sensors"),
    ("/v1.1/Things", {"$filter": "nosuch eq 1"}, 400, "nosuch"),
    ("/v1.1/Things", {"$orderby": "Datastreams/Observations/result"}, 501, "$orderby"),
    ("/v1.1/Observations", {"$resultFormat": "dataArray"}, 501, "dataArray"),
    ("/v1.1/Things/Datastreams", {}, 400, "collection"),
    ("/v1.1/Things('vs-sl-101')/colour", {}, 404, "colour"),
    ("/v1.1/Things('it'scrooked')", {}, 400, "id"),
])
def test_bad_requests_get_clear_errors(client, path, params, status, says):
    resp = client.get(path, params=params)
    assert resp.status_code == status, resp.text
    assert says in resp.json()["detail"]
    assert len(resp.json()["detail"]) < 200


def test_openapi_documents_the_sets_and_single_entities(client):
    paths = client.get("/openapi.json").json()["paths"]
    for s in EntitySet:
        assert f"/v1.1/{s}" in paths and f"/v1.1/{s}({{ident}})" in paths
    names = {p["name"] for p in paths["/v1.1/Things"]["get"]["parameters"]}
    assert {"$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count"} <= names


def test_top_is_capped_and_zero_gives_only_the_count(client):
    body = client.get("/v1.1/Datastreams", params={"$top": "0", "$count": "true"}).json()
    assert body["value"] == [] and body["@iot.count"] > 100
    everything = client.get("/v1.1/Datastreams", params={"$top": "999999", "$count": "true"}).json()
    assert len(everything["value"]) == everything["@iot.count"] and "@iot.nextLink" not in everything
    default = client.get("/v1.1/Datastreams").json()
    assert len(default["value"]) == 100 and "@iot.nextLink" in default
    assert (page_size(None), page_size(999_999), page_size(7)) == (100, 10_000, 7)


def test_property_paths_and_default_order(client):
    body = client.get("/v1.1/Things", params={"$orderby": "properties/gemeente desc,id", "$top": "1"}).json()
    assert body["value"][0]["properties"]["gemeente"] == "GM0629"
