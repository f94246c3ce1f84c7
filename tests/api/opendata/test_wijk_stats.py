"""Per-wijk statistics against a real influxd: public devices only, one request per measurement."""

import time

import httpx
import pytest

from api.settings import ApiSettings
from core.kinds import KINDS
from core.registry import load
from core.senml import Reading
from core.settings import InfluxSettings
from smartcity.data import demo_registry_path
from tests.api.conftest import CLASSIFIED, open_data_app, serve, store, write_registry

pytestmark = pytest.mark.integration


@pytest.fixture
def readings(influx, registry_file):
    now = time.time()
    store(influx, registry_file, "gw-vs-01", [
        Reading("vs-sl-101", "power", 10.0, now - 20), Reading("vs-sl-101", "power", 20.0, now - 5),
        Reading("vs-sl-103", "power", 30.0, now - 10), Reading("vs-sl-101", "lamp_failure", True, now - 5),
        Reading(CLASSIFIED, "power", 1000.0, now - 1),  # vertrouwelijk: must not count anywhere
        Reading("vs-rg-001", "rain_intensity", 2.0, now - 30),
    ])
    store(influx, registry_file, "gw-ws-01", [Reading("ws-sl-101", "power", 5.0, now - 3)])


def by_wijk(body):
    return {w["wijk"]: w for w in body["wijken"]}


def test_stats_per_wijk_count_public_devices_and_give_latest_and_mean(api, readings):
    body = api.get("/v1/stats/wijken", params={"kind": "street_light", "period": "1h"}).json()
    assert body["period"] == "1h"
    wijken = by_wijk(body)
    assert set(wijken) == {"WK062600", "WK062601", "WK062900", "WK062901"}
    lights = wijken["WK062600"]["kinds"]["street_light"]
    assert wijken["WK062600"]["gemeente"] == "GM0626"
    assert lights["devices"] == 2  # three street lights, one of them vertrouwelijk
    power = lights["metrics"]["power"]
    # mean of 10, 20 and 30 (the classified 1000 left out); latest: vs-sl-101's 20 at now-5 is the
    # wijk's newest reading (vs-sl-103's 30 is older)
    assert power == {"unit": "W", "latest": 20.0, "mean": 20.0}
    assert lights["metrics"]["lamp_failure"] == {"unit": None, "latest": True, "mean": None}
    assert wijken["WK062900"]["kinds"]["street_light"]["metrics"]["power"]["mean"] == 5.0
    assert wijken["WK062601"]["kinds"]["street_light"]["metrics"]["power"] == {"unit": "W", "latest": None,
                                                                               "mean": None}


def test_stats_of_all_kinds_make_one_influxdb_request_per_measurement(served, readings):
    app, url = served
    with httpx.Client(base_url=url) as c:
        c.get("/healthz")  # started: app.state is set
        influx = app.state.influx
        queries = []
        original = influx.query

        def counting(q, *a, **kw):
            queries.append(q)
            return original(q, *a, **kw)

        influx.query = counting
        try:
            body = c.get("/v1/stats/wijken").json()
        finally:
            influx.query = original
    assert len(queries) == len(KINDS)
    assert all(q.count("FROM") == 1 and 'GROUP BY "wijk"' in q for q in queries)
    assert by_wijk(body)["WK062600"]["kinds"]["rain_gauge"]["metrics"]["rain_intensity"]["mean"] == 2.0
    assert CLASSIFIED not in str(queries)  # the classified device is not even asked for


def test_stats_reject_unknown_kinds_and_periods(api):
    assert api.get("/v1/stats/wijken", params={"kind": "toaster"}).status_code == 404
    resp = api.get("/v1/stats/wijken", params={"period": "1y"})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["query", "period"]


def test_a_wijk_whose_devices_are_all_classified_is_not_listed(influxd, influx, tmp_path):
    hidden = {d.id: "geheim" for d in load(demo_registry_path()).devices.values() if d.wijk == "WK062601"}
    registry = write_registry(tmp_path / "r.geojson", hidden)
    settings = ApiSettings(str(registry), InfluxSettings(influxd.url, influx.config.database),
                           state_dir=str(tmp_path / "s"))
    with serve(open_data_app(settings)) as url:
        body = httpx.get(url + "/v1/stats/wijken").json()
    assert "WK062601" not in by_wijk(body)
    assert "WK062600" in by_wijk(body)
