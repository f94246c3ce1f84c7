"""GeoJSON of public devices with their latest values (/v1/latest): validators, filters, errors."""

import time
from email.utils import parsedate_to_datetime

import pytest

from core.senml import Reading
from tests.api.conftest import CLASSIFIED, store

pytestmark = pytest.mark.integration


@pytest.fixture
def recent(influx, registry_file):
    now = time.time()
    store(influx, registry_file, "gw-vs-01", [Reading("vs-sl-101", "power", 8.5, now - 5),
                                              Reading(CLASSIFIED, "power", 9.5, now - 1)])
    store(influx, registry_file, "gw-ws-01", [Reading("ws-sl-101", "power", 7.5, now - 65)])
    return now


def test_latest_has_last_modified_of_the_newest_public_reading_and_answers_304(api, recent):
    resp = api.get("/v1/latest")
    assert resp.status_code == 200
    last_modified = resp.headers["last-modified"]
    assert last_modified.endswith("GMT")
    assert resp.headers["etag"].startswith('W/"')
    # newest public reading: vs-sl-101 at now-5 (the classified one at now-1 must not show, not even here)
    assert abs(parsedate_to_datetime(last_modified).timestamp() - (recent - 5)) < 1.5
    assert api.get("/v1/latest", headers={"If-Modified-Since": last_modified}).status_code == 304
    assert api.get("/v1/latest", headers={"If-None-Match": resp.headers["etag"]}).status_code == 304
    older = "Thu, 01 Jan 2026 00:00:00 GMT"
    assert api.get("/v1/latest", headers={"If-Modified-Since": older}).status_code == 200


def test_latest_filters_by_gemeente(api, recent):
    features = api.get("/v1/latest", params={"gemeente": "GM0629"}).json()["features"]
    assert features and {f["properties"]["gemeente"] for f in features} == {"GM0629"}
    assert api.get("/v1/latest", params={"gemeente": "x"}).status_code == 422


def test_latest_features_carry_the_buurt(api, recent):
    features = {f["id"]: f for f in api.get("/v1/latest").json()["features"]}
    assert features["vs-sl-101"]["properties"]["buurt"].startswith("BU0626")
    assert CLASSIFIED not in features


def test_latest_503_does_not_name_the_influxdb_address(api, influxd):
    influxd.stop()
    resp = api.get("/v1/latest")
    assert resp.status_code == 503
    assert "unavailable" in resp.json()["detail"]
    assert influxd.url not in resp.text
    assert f":{influxd.url.rsplit(':', 1)[1]}" not in resp.text  # not even the port
    health = api.get("/healthz")
    assert health.status_code == 503 and influxd.url.split("//")[1] not in health.text


def test_a_long_unknown_kind_is_not_echoed(api):
    resp = api.get("/v1/latest", params={"kind": "t" * 5_000})
    assert resp.status_code == 422
    assert len(resp.content) < 1_000
    assert "tttttttttt" not in resp.text
    short = api.get("/v1/latest", params={"kind": "toaster"})
    assert short.status_code == 422 and "toaster" in short.json()["detail"]
