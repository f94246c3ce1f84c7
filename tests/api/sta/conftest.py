"""Shared fixtures of the SensorThings tests: a registry with one classified device, the app served by a
real uvicorn against a real influxd, and a helper that stores readings the way the ingest does.

``CLASSIFIED`` (vs-sl-102) is reclassified ``vertrouwelijk`` in ``sta_registry_file``: no test of
an open endpoint may ever see it or anything derived from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.settings import ApiSettings
from core import jsonfast
from core.influx import InfluxClient
from core.registry import load
from core.senml import Reading, encode
from core.senml_columns import decode_columns
from core.settings import InfluxSettings
from deploy.influxdb import Influxd
from deploy.processes import free_port
from ingest.points import Rejects, pack_lines
from ingest.series_table import SeriesTable
from smartcity.data import demo_registry_path
from tests.conftest import wait_for

CLASSIFIED = "vs-sl-102"  # a street light of gw-vs-01 in WK062600, classified vertrouwelijk here


@pytest.fixture
def sta_registry_file(tmp_path: Path) -> Path:
    """The demo registry with CLASSIFIED reclassified vertrouwelijk."""
    data = jsonfast.loads(demo_registry_path().read_bytes())
    for f in data["features"]:
        if f["properties"]["id"] == CLASSIFIED:
            f["properties"]["classification"] = "vertrouwelijk"
    path = tmp_path / "registry.geojson"
    path.write_bytes(jsonfast.dumps(data))
    return path


@pytest.fixture
def sta_settings(influxd: Influxd, influx: InfluxClient, sta_registry_file: Path, tmp_path: Path) -> ApiSettings:
    """Settings of the app: the classified registry, the test influxd, a private state directory."""
    return ApiSettings(str(sta_registry_file), InfluxSettings(influxd.url, influx.config.database),
                       state_dir=str(tmp_path / "api-state"))


def serve(app: FastAPI) -> Iterator[str]:
    """Serve an app on a free loopback port with a real uvicorn; yields the base URL (no trailing slash)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def sta_url(sta_settings: ApiSettings) -> Iterator[str]:
    """The base URL of the served app (the SensorThings service root is sta_url + '/v1.1')."""
    yield from serve(create_app(sta_settings))


@pytest.fixture
def sta_client(sta_url: str) -> Iterator[httpx.Client]:
    """An HTTP client of the served app, based at the SensorThings service root."""
    with httpx.Client(base_url=f"{sta_url}/v1.1", timeout=20) as client:
        yield client


def store_readings(influx: InfluxClient, registry_file: Path, gateway: str, readings: Sequence[Reading]) -> None:
    """Write readings to InfluxDB exactly as the ingest does (same line protocol, same tags)."""
    cols = decode_columns(encode(list(readings), 0))
    rejects = Rejects()
    lines = pack_lines(gateway, cols, SeriesTable(load(registry_file)), now=time.time(), rejects=rejects)
    if not lines:
        raise AssertionError(f"no reading was accepted: {rejects}")
    influx.write("\n".join(lines), precision="u")


@pytest.fixture
def store(influx: InfluxClient, sta_registry_file: Path) -> Callable[[str, Sequence[Reading]], None]:
    """store(gateway, readings): store readings of the sta_registry_file's devices."""
    return lambda gateway, readings: store_readings(influx, sta_registry_file, gateway, readings)
