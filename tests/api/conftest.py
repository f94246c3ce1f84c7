"""Shared fixtures of the API tests: a registry with a classified device, a served app, stored readings.

``open_data_app`` builds the app the way ``api.app.create_app`` does, but with only the parts the
open-data and HTTP tests exercise (HTTP hygiene, health, /v1/latest, api.opendata), so those tests
do not depend on the SensorThings and operator parts; ``tests/api/http/test_full_app.py`` checks the
same hygiene on ``create_app`` itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import open_clients
from api.http import setup as http_setup
from api.opendata import setup as opendata_setup
from api.routes import health, latest
from api.settings import ApiSettings
from core import jsonfast
from core.influx import InfluxClient
from core.registry import load
from core.senml import Reading, encode
from core.senml_columns import decode_columns
from core.settings import InfluxSettings
from deploy.processes import free_port
from ingest.points import Rejects, pack_lines
from ingest.series_table import SeriesTable
from smartcity.data import demo_registry_path
from tests.conftest import wait_for

CLASSIFIED = "vs-sl-102"  # a street light in WK062600 (Voorschoten) made vertrouwelijk by registry_file


def write_registry(path: Path, classified: dict[str, str]) -> Path:
    """The demo registry with some devices' classification changed (id -> classification)."""
    data = jsonfast.loads(demo_registry_path().read_bytes())
    for f in data["features"]:
        if f["properties"]["id"] in classified:
            f["properties"]["classification"] = classified[f["properties"]["id"]]
    path.write_bytes(jsonfast.dumps(data))
    return path


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    """The demo registry with vs-sl-102 classified vertrouwelijk."""
    return write_registry(tmp_path / "registry.geojson", {CLASSIFIED: "vertrouwelijk"})


@pytest.fixture
def api_settings(influxd: Any, influx: InfluxClient, registry_file: Path, tmp_path: Path) -> ApiSettings:
    """Settings of an API on the test's influxd and registry."""
    return ApiSettings(str(registry_file), InfluxSettings(influxd.url, influx.config.database),
                       state_dir=str(tmp_path / "api-state"))


def open_data_app(settings: ApiSettings, extra: Callable[[FastAPI], None] | None = None) -> FastAPI:
    """The app with HTTP hygiene, health, /v1/latest and the open-data routes; extra(app) adds routes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        close = open_clients(app, settings)
        try:
            yield
        finally:
            close()

    app = FastAPI(lifespan=lifespan)
    http_setup.install(app, settings)
    app.include_router(health.router)
    app.include_router(latest.router)
    for router in opendata_setup.routers():
        app.include_router(router)
    if extra:
        extra(app)
    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve app with a real uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(api_settings: ApiSettings) -> Iterator[tuple[FastAPI, str]]:
    """The open-data app, served: (app, base URL)."""
    app = open_data_app(api_settings)
    with serve(app) as url:
        yield app, url


@pytest.fixture
def api(served: tuple[FastAPI, str]) -> Iterator[httpx.Client]:
    """An HTTP client of the served open-data app."""
    with httpx.Client(base_url=served[1], timeout=10) as c:
        yield c


def store(influx: InfluxClient, registry_file: Path, gateway: str, readings: list[Reading]) -> None:
    """Store readings the way the ingest does (recent ones only: the ingest refuses old readings)."""
    cols = decode_columns(encode(readings, 0))
    lines = pack_lines(gateway, cols, SeriesTable(load(registry_file)), now=time.time(), rejects=Rejects())
    influx.write("\n".join(lines), precision="u")


def store_lines(influx: InfluxClient, registry_file: Path, points: list[tuple[str, int, dict[str, Any]]]) -> None:
    """Store (device, time_us, fields) as line protocol with the registry's tags, at any time."""
    devices = load(registry_file).devices
    lines = []
    for device_id, time_us, fields in points:
        d = devices[device_id]
        values = ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else float(v)}" for k, v in fields.items())
        lines.append(f"{d.kind},device={d.id},gateway={d.gateway},gemeente={d.gemeente},wijk={d.wijk} "
                     f"{values} {time_us}")
    influx.write("\n".join(lines), precision="u")
