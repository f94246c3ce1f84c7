"""The read side of /v1.1 end to end: the full app on a real uvicorn, Observations from a real influxd,
stored the way the ingest stores them."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from core.senml import Reading
from ingest.points import micros
from tests.api.sta.conftest import CLASSIFIED, serve

pytestmark = pytest.mark.integration

NOW = time.time()
POWER = [(NOW - 50 + i * 10, 10.0 + i) for i in range(5)]  # 10, 11, 12, 13, 14 W, 10 s apart


@pytest.fixture
def readings(store):
    store("gw-vs-01", [Reading("vs-sl-101", "power", v, t) for t, v in POWER] + [
        Reading("vs-sl-101", "dim_level", 80.0, NOW - 30),
        Reading("vs-sl-103", "power", 7.0, NOW - 20),
        Reading(CLASSIFIED, "power", 99.0, NOW - 20),
        Reading("vs-oc-101", "presence", True, NOW - 15),
    ])


@pytest.fixture
def served(sta_settings, readings):
    """The app object (to watch its InfluxDB client) and a client of it."""
    app = create_app(sta_settings)
    for url in serve(app):
        with httpx.Client(base_url=f"{url}/v1.1", timeout=20) as client:
            yield app, client


def follow(client, link):
    parts = urlsplit(link)
    resp = client.get(f"{parts.scheme}://{parts.netloc}{parts.path}?{parts.query}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_observations_of_a_datastream_page_through_next_links(served):
    _, client = served
    body = client.get("/Datastreams('vs-sl-101.power')/Observations", params={"$top": "2", "$count": "true"}).json()
    assert body["@iot.count"] == 5
    seen = [o["result"] for o in body["value"]]
    while "@iot.nextLink" in body:
        assert body["@iot.nextLink"].startswith("http://127.0.0.1:")
        body = follow(client, body["@iot.nextLink"])
        seen += [o["result"] for o in body["value"]]
    assert seen == [10.0, 11.0, 12.0, 13.0, 14.0]
    first = client.get("/Datastreams('vs-sl-101.power')/Observations", params={"$top": "1"}).json()["value"][0]
    assert first["@iot.id"] == f"vs-sl-101.power.{micros(POWER[0][0])}"


def test_observation_filter_orderby_and_point_query(served):
    _, client = served
    body = client.get("/Datastreams('vs-sl-101.power')/Observations",
                      params={"$filter": "result ge 12", "$orderby": "phenomenonTime desc"}).json()
    assert [o["result"] for o in body["value"]] == [14.0, 13.0, 12.0]
    ident = body["value"][0]["@iot.id"]
    one = client.get(f"/Observations('{ident}')").json()
    assert one["result"] == 14.0 and one["phenomenonTime"] == body["value"][0]["phenomenonTime"]
    assert client.get(f"/Observations('{ident}')/Datastream/Thing").json()["@iot.id"] == "vs-sl-101"


def test_classified_observations_never_show(served):
    _, client = served
    hidden = f"{CLASSIFIED}.power.{micros(NOW - 20)}"
    assert client.get(f"/Observations('{hidden}')").status_code == 404
    everything = client.get("/Observations", params={"$top": "1000", "$count": "true"}).json()
    assert everything["@iot.count"] == len(everything["value"]) == 8
    assert all(not o["@iot.id"].startswith(CLASSIFIED) for o in everything["value"])
    wijk = client.get("/Observations", params={
        "$filter": "Datastream/Thing/properties/wijk eq 'WK062600' and result eq 99"}).json()
    assert wijk["value"] == []


def test_latest_per_datastream_of_a_wijk_costs_one_request_per_measurement(served):
    app, client = served
    queries: list[str] = []
    real = app.state.influx.query

    def counting(q, *args, **kwargs):
        queries.append(q)
        return real(q, *args, **kwargs)

    app.state.influx.query = counting
    expand = "Datastreams($expand=Observations($top=1;$orderby=phenomenonTime desc))"
    body = client.get("/Things", params={"$filter": "properties/wijk eq 'WK062600'", "$expand": expand}).json()
    # One HTTP request to InfluxDB for all plain Datastreams (a statement per measurement in it), and the
    # store's own few requests for the aggregates, however many Datastreams the wijk has.
    assert len(queries) <= 10, queries
    things = {t["@iot.id"]: t for t in body["value"]}
    assert CLASSIFIED not in things
    streams = {d["@iot.id"]: d["Observations"] for d in things["vs-sl-101"]["Datastreams"]}
    assert sum(len(t["Datastreams"]) for t in things.values()) > 50  # one query each would be > 50
    assert [o["result"] for o in streams["vs-sl-101.power"]] == [14.0]
    assert [o["result"] for o in streams["vs-sl-101.dim_level"]] == [80.0]
    assert streams["vs-sl-101.voltage"] == []
    assert [o["result"] for o in
            {d["@iot.id"]: d["Observations"] for d in things["vs-oc-101"]["Datastreams"]}["vs-oc-101.presence"]] \
        == [True]


def test_hourly_aggregate_of_a_datastream(served):
    _, client = served
    body = client.get("/Datastreams('vs-sl-101.power.hourly')/Observations").json()
    total = sum(r["result"]["count"] for r in body["value"])
    assert total == 5
    assert sum(r["result"]["sum"] for r in body["value"]) == pytest.approx(60.0)
    start, end = body["value"][0]["phenomenonTime"].split("/")
    assert start < end


def test_service_root_and_things_through_the_full_app(served):
    _, client = served
    root = client.get("").json()
    assert root["value"][0]["url"].endswith("/v1.1/Things")
    things = client.get("/Things", params={"$top": "1000"}).json()
    assert CLASSIFIED not in {t["@iot.id"] for t in things["value"]}


def test_errors_through_the_full_app_are_short_and_never_name_influxdb(served, influxd):
    _, client = served
    missing = client.get("/Things('nope')")
    assert missing.status_code == 404 and "nope" in missing.text
    bad = client.get("/Things", params={"$filter": "name eq 'x" + "y" * 500})
    assert bad.status_code == 400 and len(bad.text) < 400
    influxd.stop()
    down = client.get("/Datastreams('vs-sl-101.power')/Observations")
    assert down.status_code == 503
    assert influxd.url.split("//")[1] not in down.text and "8086" not in down.text
    assert client.get("/Things('vs-sl-101')").status_code == 200  # entities do not need InfluxDB
