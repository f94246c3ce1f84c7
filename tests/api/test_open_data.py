"""The API against a real influxd."""

import threading
import time

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from core import jsonfast
from core.registry import load
from core.senml import Reading, encode
from core.senml_columns import decode_columns
from core.settings import InfluxSettings
from deploy.processes import free_port
from ingest.points import Rejects, pack_lines
from ingest.series_table import SeriesTable
from smartcity.data import demo_registry_path
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def registry_file(tmp_path):
    data = jsonfast.loads(demo_registry_path().read_bytes())
    for f in data["features"]:
        if f["properties"]["id"] == "vs-sl-102":
            f["properties"]["classification"] = "vertrouwelijk"
    path = tmp_path / "registry.geojson"
    path.write_bytes(jsonfast.dumps(data))
    return path


@pytest.fixture
def client(influxd, influx, registry_file):
    """The app served by a real uvicorn on a free loopback port, and an HTTP client of it."""
    settings = ApiSettings(str(registry_file), InfluxSettings(influxd.url, influx.config.database))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        yield c
    server.should_exit = True
    thread.join(10)


def store(influx, registry_file, gateway, readings):
    cols = decode_columns(encode(readings, 0))
    lines = pack_lines(gateway, cols, SeriesTable(load(registry_file)), now=time.time(), rejects=Rejects())
    influx.write("\n".join(lines), precision="u")


def test_healthz_reports_influxdb_and_registry(client):
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "influxdb": True, "gateways": 2, "devices": 26}


def test_healthz_is_503_when_influxdb_is_down(client, influxd):
    influxd.stop()
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json()["influxdb"] is False


def test_latest_gives_the_newest_values_per_public_device_as_geojson(client, influx, registry_file):
    now = time.time()
    store(influx, registry_file, "gw-vs-01", [
        Reading("vs-sl-101", "dim_level", 100.0, now - 10), Reading("vs-sl-101", "power", 40.5, now - 10),
        Reading("vs-sl-101", "dim_level", 20.0, now - 1), Reading("vs-sl-101", "power", 8.5, now - 1),
        Reading("vs-sl-102", "dim_level", 55.0, now - 1),
        Reading("vs-oc-101", "presence", True, now - 2), Reading("vs-oc-101", "count", 3.0, now - 2),
    ])
    body = client.get("/v1/latest").json()
    assert body["type"] == "FeatureCollection"
    features = {f["id"]: f for f in body["features"]}
    assert "vs-sl-102" not in features  # vertrouwelijk: never served as open data
    light = features["vs-sl-101"]
    assert light["geometry"]["type"] == "Point"
    assert light["properties"]["readings"]["dim_level"] == {"value": 20.0, "unit": "%"}
    assert light["properties"]["readings"]["power"] == {"value": 8.5, "unit": "W"}
    assert light["properties"]["gemeente"] == "GM0626"
    assert features["vs-oc-101"]["properties"]["readings"]["presence"]["value"] is True
    assert features["ws-sl-101"]["properties"]["time"] is None  # known device, no data yet


def test_latest_filters_by_kind_and_rejects_unknown_kinds(client):
    body = client.get("/v1/latest", params={"kind": "rain_gauge"}).json()
    assert {f["properties"]["kind"] for f in body["features"]} == {"rain_gauge"}
    resp = client.get("/v1/latest", params={"kind": "toaster"})
    assert resp.status_code == 422
    assert "toaster" in resp.json()["detail"]
