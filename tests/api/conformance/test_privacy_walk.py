"""Privacy walk: with vs-sl-102 classified 'vertrouwelijk', no open route or option shows it.

Every open GET route of /openapi.json (each with its parameters' values), every SensorThings set
with deep $expand, navigation from every entity, $filter on related entities, $count, $ref,
aggregates: no response contains the device's id, name or coordinates, or its readings. Asking
for it directly answers 404 with the same body as for an id that never existed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.api.conformance import data
from tests.api.conformance.sta import ROOT, SETS, Sta, path

pytestmark = pytest.mark.integration

SECRETS = (data.CLASSIFIED, data.CLASSIFIED_NAME, data.CLASSIFIED_LAT)
C = data.CLASSIFIED
DEEP_EXPAND = {
    "Things": "Datastreams($expand=Observations,Sensor,ObservedProperty),Locations,"
              "HistoricalLocations($expand=Locations)",
    "Locations": "Things($expand=Datastreams),HistoricalLocations($expand=Thing)",
    "HistoricalLocations": "Thing($expand=Datastreams),Locations",
    "Datastreams": "Thing($expand=Locations),Sensor,ObservedProperty,Observations($expand=FeatureOfInterest)",
    "Sensors": "Datastreams($expand=Thing,Observations)",
    "ObservedProperties": "Datastreams($expand=Thing,Observations)",
    "Observations": "Datastream($expand=Thing),FeatureOfInterest",
    "FeaturesOfInterest": "Observations($expand=Datastream($expand=Thing))",
}
RELATED_FILTERS = [
    ("Things", "Datastreams/Observations/result eq 55"),
    ("Things", f"name eq '{data.CLASSIFIED_NAME}'"),
    ("Things", f"id eq '{C}'"),
    ("Datastreams", f"Thing/name eq '{data.CLASSIFIED_NAME}'"),
    ("Datastreams", f"Thing/id eq '{C}'"),
    ("Datastreams", f"startswith(id,'{C}')"),
    ("Observations", "result eq 55"),
    ("Observations", "result eq 77.7"),
    ("Observations", f"Datastream/Thing/id eq '{C}'"),
    ("Observations", f"FeatureOfInterest/id eq '{C}'"),
    ("Locations", "st_equals(location,geography'POINT(4.4467 52.1285)')"),
    ("Locations", "geo.distance(location,geography'POINT(4.4467 52.1285)') lt 0.00001"),
    ("Locations", f"Things/id eq '{C}'"),
    ("FeaturesOfInterest", "st_equals(feature,geography'POINT(4.4467 52.1285)')"),
    ("HistoricalLocations", f"Thing/id eq '{C}'"),
    ("Sensors", f"Datastreams/Thing/id eq '{C}'"),
    ("ObservedProperties", f"Datastreams/Thing/id eq '{C}'"),
]


def leaks(body: Any) -> list[str]:
    """What in a response body gives the classified device away."""
    text = body if isinstance(body, str) else repr(body)
    found = [s for s in SECRETS if s in text]
    if not isinstance(body, str):
        found += [f"result {v}" for v in walk_results(body) if v in data.SECRET_VALUES]
    return found


def walk_results(node: Any) -> list[Any]:
    if isinstance(node, dict):
        out = [node["result"]] if "result" in node and isinstance(node["result"], float | int) else []
        return out + [v for child in node.values() for v in walk_results(child)]
    if isinstance(node, list):
        return [v for child in node for v in walk_results(child)]
    return []


def assert_clean(r: httpx.Response) -> None:
    assert r.status_code < 500, f"GET {r.request.url} -> {r.status_code}: {r.text[:200]}"
    body: Any = r.text
    if r.headers.get("content-type", "").startswith(("application/json", "application/geo+json")):
        body = r.json()
    found = leaks(body)
    assert not found, f"GET {r.request.url} shows the classified device: {found}"


def test_sensorthings_sets_with_deep_expand_never_show_it(anon: Sta) -> None:
    """Each set, deeply expanded, every page; $count counts only what is listed."""
    for entity_set in SETS:
        pages = list(anon.pages(path(entity_set), **{"$expand": DEEP_EXPAND[entity_set], "$count": "true"}))
        for page in pages:
            assert not leaks(page), f"{entity_set}?$expand=...: {leaks(page)}"
        listed = sum(len(p["value"]) for p in pages)
        assert pages[0]["@iot.count"] == listed, f"{entity_set}: @iot.count {pages[0]['@iot.count']} != {listed} listed"
        for page in anon.pages(path(entity_set), **{"$select": "id"}):
            assert not leaks(page)


def test_navigation_from_every_entity_never_shows_it(anon: Sta) -> None:
    """Every navigation link and $ref of every entity (Observations: of the first page)."""
    for entity_set in SETS:
        entities = anon.json(path(entity_set))["value"] if entity_set == "Observations" else anon.all(path(entity_set))
        for e in entities:
            for key, link in e.items():
                if key.endswith("@iot.navigationLink"):
                    url = link if "://" in link else f"{ROOT}/{link}"
                    r = anon.http.get(url)
                    assert r.status_code == 200, f"{url} -> {r.status_code}"
                    assert_clean(r)
                    if key.split("@")[0] in ("Datastreams", "Things", "Locations", "HistoricalLocations"):
                        assert_clean(anon.http.get(url + "/$ref"))


@pytest.mark.parametrize(("entity_set", "flt"), RELATED_FILTERS, ids=[f"{s}:{f[:30]}" for s, f in RELATED_FILTERS])
def test_filter_on_related_entities_never_finds_it(anon: Sta, entity_set: str, flt: str) -> None:
    """$filter on the classified device's properties, readings or place finds nothing (count 0).
    (A 501 for a filter the service does not implement reveals nothing either; the conformance
    tests report it.)"""
    r = anon.get(path(entity_set), **{"$filter": flt, "$count": "true"})
    if r.status_code == 501:
        assert not leaks(r.text), r.text[:200]
        return
    assert r.status_code == 200, f"{entity_set}?$filter={flt} -> {r.status_code}: {r.text[:200]}"
    body = r.json()
    assert body["value"] == [] and body["@iot.count"] == 0, f"{entity_set}?$filter={flt}: {body['value'][:2]}"


def test_direct_requests_answer_404_like_an_unknown_id(anon: Sta, served) -> None:
    """Its Thing, Location, FeatureOfInterest, HistoricalLocation, Datastreams, Observations and
    aggregates answer 404 with the body an id that never existed gets (nothing reveals existence)."""
    t_us = (served.base + 30) * 1_000_000
    for template in ("Things('{d}')", "Locations('{d}')", "FeaturesOfInterest('{d}')", "HistoricalLocations('{d}.0')",
                     "Datastreams('{d}.dim_level')", "Datastreams('{d}.dim_level')/Observations",
                     "Datastreams('{d}.power')/Thing", "Things('{d}')/Datastreams", "Things('{d}')/Locations",
                     f"Observations('{{d}}.dim_level.{t_us}')", "Datastreams('{d}.dim_level.hourly')",
                     "Datastreams('{d}.dim_level.daily')/Observations", "Things('{d}')/name/$value"):
        secret = anon.http.get(f"{ROOT}/" + template.format(d=C))
        never = anon.http.get(f"{ROOT}/" + template.format(d="vs-sl-999"))
        assert secret.status_code == never.status_code == 404, f"{template}: {secret.status_code}, {never.status_code}"
        assert secret.text.replace(C, "X") == never.text.replace("vs-sl-999", "X"), template


def public_routes(served) -> list[str]:
    """Every open GET route of the OpenAPI document with its parameters filled in (several ways)."""
    spec = httpx.get(served.url + "/openapi.json").json()
    start = dt.datetime.fromtimestamp(served.base - 3600, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {"kind": ["street_light", "occupancy", "rain_gauge"], "gemeente": ["GM0626"], "from": [start],
              "to": [end], "period": ["1h", "24h", "7d"], "ident": [f"'{C}'", f"'{C}.dim_level'"], "device": [C]}
    urls = []
    for route, ops in spec["paths"].items():
        if "get" not in ops or route.startswith("/v1/operator"):
            continue
        params = ops["get"].get("parameters", [])
        url = route
        for p in (p for p in params if p["in"] == "path"):
            url = url.replace("{" + p["name"] + "}", values.get(p["name"], ["x"])[0])
        urls.append(url)
        for p in (p for p in params if p["in"] == "query" and p["name"] in values):
            urls += [f"{url}?{p['name']}={v}" for v in values[p["name"]]]
        query = "&".join(f"{p['name']}={values[p['name']][0]}" for p in params
                         if p["in"] == "query" and p["name"] in values)
        if query:
            urls.append(f"{url}?{query}")
    return urls


def test_every_open_route_never_shows_it(anon: Sta, served) -> None:
    """GeoJSON /v1/latest, the CSV export, wijk statistics, the catalogue, health, the service
    root: each open GET route of the OpenAPI document, with each of its parameters."""
    urls = public_routes(served)
    assert any(u.startswith("/v1/latest") for u in urls) and any(".csv" in u for u in urls), urls
    for url in urls:
        r = anon.http.get(url)
        if f"('{C}" in url:
            assert r.status_code == 404, f"{url} -> {r.status_code}"
            continue
        assert_clean(r)
    csv = anon.http.get("/v1/export/street_light.csv", params={"from": data.iso((served.base - 60) * 1_000_000)})
    assert csv.status_code == 200 and "vs-sl-101" in csv.text, f"CSV export -> {csv.status_code}: {csv.text[:200]}"
    assert_clean(csv)


def test_aggregates_leave_it_out(anon: Sta, served) -> None:
    """The hourly street-light dim_level aggregate of its wijk counts only the public devices'
    readings (vs-sl-101 and vs-sl-103), never its 55.0."""
    ds = "wijk.WK062600.street_light.dim_level.hourly"
    public = [s for s in data.stored(served.base) if s.datastream in (data.LIGHT_DIM, "vs-sl-103.dim_level")]
    buckets = anon.all(path("Datastreams", ds, "Observations"))
    assert buckets, f"{ds} has no Observations"
    for o in buckets:
        start, end = (data.time_us(t) for t in o["phenomenonTime"].split("/"))
        values = [s.value for s in public if start <= s.time_us < end]
        assert values, f"a bucket with no public readings: {o}"
        assert o["result"]["count"] == len(values), o
        assert o["result"]["sum"] == pytest.approx(sum(values)), o
        assert o["result"]["max"] == max(values) and o["result"]["min"] == min(values), o
