"""OGC 18-088 Annex A.2 (Filtering Extension), the query options other than $filter's operators:
evaluation order, $expand, $select, status codes, $orderby, $top, $skip, $count, nextLink paging.

Each test is named after its requirement (18-088 clause 9.3) and names its URI. Where a result
can be worked out from the unfiltered collection, the test does so (the oracle is the service's
own full listing, so the test does not depend on how the registry maps to entities).
"""

from __future__ import annotations

import itertools

import pytest

from tests.api.conformance import data
from tests.api.conformance.sta import REQ, ROOT, Sta, path

pytestmark = pytest.mark.integration

DIM_OBS = path("Datastreams", data.LIGHT_DIM, "Observations")


def dim_values() -> list[float]:
    return [float(3 * i) for i in range(data.N_DIM)]


def props(entity: dict[str, object]) -> set[str]:
    """The keys of an entity other than its id and selfLink (control information $select may keep)."""
    return set(entity) - {"@iot.id", "@iot.selfLink"}


def test_request_data_order(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/order

    Options are evaluated as if in the order $filter, $count, $orderby, $skip, $top, then $select
    and $expand, whatever their order in the URL.
    """
    body = anon.json(DIM_OBS, **{"$top": "3", "$skip": "2", "$orderby": "result desc", "$count": "true",
                                 "$filter": "result ge 30", "$select": "result"})
    matching = sorted((v for v in dim_values() if v >= 30), reverse=True)
    assert body["@iot.count"] == len(matching)  # counted after $filter, before $skip/$top
    assert [o["result"] for o in body["value"]] == matching[2:5]
    assert all(props(o) == {"result"} for o in body["value"]), body["value"]  # $select after paging

    everything = anon.all(path("Things"), **{"$orderby": "name desc"})
    lights = [t for t in everything if t["name"].startswith("Lichtmast")]
    page = anon.json(path("Things"), **{"$expand": "Datastreams($select=name)", "$select": "name,Datastreams",
                                        "$top": "2", "$skip": "1", "$orderby": "name desc",
                                        "$filter": "startswith(name,'Lichtmast')"})
    assert [t["name"] for t in page["value"]] == [t["name"] for t in lights[1:3]]
    assert all(isinstance(t["Datastreams"], list) and t["Datastreams"] for t in page["value"])


def test_request_data_expand(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/expand

    $expand: a comma separated list of navigation properties, each optionally followed by
    /another for multi-level expansion, with nested options in parentheses ($filter, $select,
    $orderby, $skip, $top, $count, $expand) separated by semicolons.
    """
    thing = anon.json(path("Things", data.LIGHT), **{"$expand": "Datastreams,Locations"})
    assert data.LIGHT_DIM in {d["@iot.id"] for d in thing["Datastreams"]}
    assert len(thing["Locations"]) == 1 and "location" in thing["Locations"][0]

    thing = anon.json(path("Things", data.LIGHT), **{"$expand": "Datastreams/ObservedProperty"})
    dim = next(d for d in thing["Datastreams"] if d["@iot.id"] == data.LIGHT_DIM)
    assert "definition" in dim["ObservedProperty"]

    ds = anon.json(path("Datastreams", data.LIGHT_DIM), **{"$expand": "Observations,ObservedProperty"})
    assert sorted(o["result"] for o in ds["Observations"]) == dim_values()
    assert ds["ObservedProperty"]["@iot.id"]

    ds = anon.json(path("Datastreams", data.LIGHT_DIM), **{"$expand": "Observations($filter=result eq 6)"})
    assert [o["result"] for o in ds["Observations"]] == [6.0]

    ds = anon.json(path("Datastreams", data.LIGHT_DIM),
                   **{"$expand": "Observations($orderby=result desc;$top=2;$skip=1;$select=result;$count=true)"})
    assert ds["Observations"] == [{"result": 84.0}, {"result": 81.0}]
    assert ds.get("Observations@iot.count") == data.N_DIM

    thing = anon.json(path("Things", data.LIGHT),
                      **{"$expand": "Datastreams($filter=name eq '{}';$expand=Observations($top=1;"
                         "$orderby=phenomenonTime desc))".format(
                             anon.json(path("Datastreams", data.LIGHT_DIM))["name"].replace("'", "''"))})
    assert [d["@iot.id"] for d in thing["Datastreams"]] == [data.LIGHT_DIM]
    assert [o["result"] for o in thing["Datastreams"][0]["Observations"]] == [dim_values()[-1]]


def test_request_data_select(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/select

    $select returns only the requested properties (navigation properties included), along with
    any expanded navigation properties; $select=id gives the id.
    """
    obs = anon.json(DIM_OBS, **{"$select": "result,phenomenonTime", "$top": "3"})["value"]
    assert obs and all(props(o) == {"result", "phenomenonTime"} for o in obs), obs
    things = anon.json(path("Things"), **{"$select": "name"})["value"]
    assert things and all(props(t) == {"name"} for t in things), things[:2]
    t = anon.json(path("Things", data.LIGHT), **{"$select": "id"})
    assert t["@iot.id"] == data.LIGHT and props(t) == set(), t
    ds = anon.json(path("Datastreams", data.LIGHT_DIM),
                   **{"$select": "id", "$expand": "Observations/FeatureOfInterest"})
    assert ds["@iot.id"] == data.LIGHT_DIM and "name" not in ds
    assert len(ds["Observations"]) == data.N_DIM and "feature" in ds["Observations"][0]["FeatureOfInterest"]
    ds = anon.json(path("Datastreams", data.LIGHT_DIM), **{"$expand": "Observations($select=result)"})
    assert all(props(o) == {"result"} for o in ds["Observations"])
    t = anon.json(path("Things", data.LIGHT), **{"$select": "name,Datastreams"})
    assert props(t) == {"name", "Datastreams@iot.navigationLink"}, t


@pytest.mark.parametrize("url", [
    path("Things", "no-such-device"), path("Locations", "no-such-device"), path("HistoricalLocations", "nope.0"),
    path("Datastreams", "no-such-device.dim_level"), path("Datastreams", f"{data.LIGHT}.no_such_metric"),
    path("Sensors", "toaster"), path("ObservedProperties", "no_such_metric"),
    path("Observations", f"{data.LIGHT_DIM}.1"), path("FeaturesOfInterest", "no-such-device"),
    path("Things", "no-such-device", "Datastreams"), path("Datastreams", "no-such.x", "Observations"),
])
def test_request_data_status_code(anon: Sta, url: str) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/status-code

    A request for a resource that is not there answers 404 Not Found (or 410 Gone).
    """
    r = anon.get(url)
    assert r.status_code in (404, 410), f"{url} -> {r.status_code}: {r.text[:200]}"


def test_request_data_query_status_code(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/query-status-code

    "If a service does not support a system query option, it SHALL fail any request that contains
    the unsupported option and SHALL return 501 Not Implemented." $resultFormat=dataArray (the
    Data Array extension) must answer 501 unless the service declares data-array.
    """
    conformance = anon.json(ROOT)["serverSettings"]["conformance"]
    r = anon.get(path("Datastreams", data.LIGHT_DIM, "Observations"), **{"$resultFormat": "dataArray"})
    if any(c.startswith(REQ + "data-array") for c in conformance):
        assert r.status_code == 200
    else:
        assert r.status_code == 501, f"unsupported $resultFormat -> {r.status_code}: {r.text[:200]}"
        assert "resultFormat" in r.text or "dataArray" in r.text, "the 501 does not say which feature"


def test_request_data_orderby(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/orderby

    Sorted by each expression in turn; asc by default; desc on request.
    """
    assert [o["result"] for o in anon.all(DIM_OBS, **{"$orderby": "result"})] == dim_values()
    assert [o["result"] for o in anon.all(DIM_OBS, **{"$orderby": "result desc"})] == dim_values()[::-1]
    times = [data.time_us(o["phenomenonTime"]) for o in anon.all(DIM_OBS, **{"$orderby": "phenomenonTime desc"})]
    assert times == sorted(times, reverse=True) and len(times) == data.N_DIM
    names = [t["name"] for t in anon.all(path("Things"), **{"$orderby": "name asc"})]
    assert names == sorted(names)
    things = anon.all(path("Things"), **{"$orderby": "description,name desc"})
    keys = [(t["description"], t["name"]) for t in things]
    for a, b in itertools.pairwise(keys):
        assert a[0] < b[0] or (a[0] == b[0] and a[1] >= b[1]), f"not ordered by description, name desc: {a} {b}"
    obs = anon.all(path("Observations"), **{"$orderby": "result", "$filter": f"Datastream/id eq '{data.RAIN}'"})
    assert [o["result"] for o in obs] == list(data.RAIN_VALUES)


def test_request_data_top(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/top

    $top=n returns up to n items; a stable order across requests; a $top above the service's page
    limit is discarded in favour of the limit (not an error); a negative $top is not valid.
    """
    everything = anon.ids(path("Things"))
    assert [t["@iot.id"] for t in anon.json(path("Things"), **{"$top": "5"})["value"]] == everything[:5]
    assert anon.json(path("Things"), **{"$top": "0"})["value"] == []
    obs = anon.json(DIM_OBS, **{"$top": "5", "$orderby": "phenomenonTime desc"})["value"]
    assert [o["result"] for o in obs] == dim_values()[::-1][:5]
    r = anon.get(path("Things"), **{"$top": "1000000"})
    assert r.status_code == 200, f"$top above the page limit -> {r.status_code}: {r.text[:200]}"
    assert anon.get(path("Things"), **{"$top": "-1"}).status_code == 400
    assert anon.get(path("Things"), **{"$top": "many"}).status_code == 400


def test_request_data_skip(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/skip

    $skip=n returns items from position n+1; with $top, $skip applies first whatever the order in
    the URL; a stable order across requests.
    """
    everything = anon.ids(path("Things"))
    assert anon.ids(path("Things"), **{"$skip": "5"}) == everything[5:]
    r = anon.http.get(f"{path('Things')}?$top=2&$skip=3")
    assert [t["@iot.id"] for t in r.json()["value"]] == everything[3:5]
    r = anon.http.get(f"{path('Things')}?$skip=3&$top=2")
    assert [t["@iot.id"] for t in r.json()["value"]] == everything[3:5]
    obs = anon.json(DIM_OBS, **{"$skip": "2", "$top": "2", "$orderby": "phenomenonTime"})["value"]
    assert [o["result"] for o in obs] == dim_values()[2:4]
    assert anon.json(path("Things"), **{"$skip": str(len(everything))})["value"] == []
    assert anon.get(path("Things"), **{"$skip": "-1"}).status_code == 400


def test_request_data_count(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/count

    $count=true adds the total count (ignoring $top, $skip, $expand; honouring $filter) before
    value; false or absent: no count; any other value: 400 Bad Request.
    """
    everything = anon.ids(path("Things"))
    body = anon.json(path("Things"), **{"$count": "true", "$top": "2", "$skip": "1", "$expand": "Datastreams"})
    assert body["@iot.count"] == len(everything)
    assert list(body).index("@iot.count") < list(body).index("value")
    assert "@iot.count" not in anon.json(path("Things"), **{"$count": "false"})
    body = anon.json(DIM_OBS, **{"$count": "true", "$filter": "result lt 30", "$top": "1"})
    assert body["@iot.count"] == len([v for v in dim_values() if v < 30])
    assert anon.json(path("Observations"), **{"$count": "true", "$filter": f"Datastream/id eq '{data.RAIN}'"})[
        "@iot.count"] == len(data.RAIN_VALUES)
    for bad in ("yes", "1", "TRUE "):
        r = anon.get(path("Things"), **{"$count": bad})
        assert r.status_code == 400, f"$count={bad!r} -> {r.status_code}"


def test_request_data_pagination(anon: Sta) -> None:
    """http://www.opengis.net/spec/iot_sensing/1.1/req/request-data/pagination

    A partial response carries a nextLink to the next part; the last part carries none; following
    them gives every item once. The client treats the link as opaque.
    """
    power = path("Datastreams", data.LIGHT_POWER, "Observations")
    pages = list(anon.pages(power, **{"$orderby": "phenomenonTime", "$count": "true"}))
    assert len(pages) >= 2, "150 Observations in one page: the default page limit (100) is not applied"
    assert all("@iot.nextLink" in p for p in pages[:-1]) and "@iot.nextLink" not in pages[-1]
    assert [o["result"] for p in pages for o in p["value"]] == [10.5 + i for i in range(data.N_POWER)]
    assert pages[0]["@iot.count"] == data.N_POWER
    unordered = [o["@iot.id"] for p in anon.pages(power) for o in p["value"]]
    assert len(unordered) == len(set(unordered)) == data.N_POWER
    # A response with every item carries no nextLink.
    assert "@iot.nextLink" not in anon.json(DIM_OBS)
