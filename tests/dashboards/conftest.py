"""The dashboards' session fixture: one influxd filled with a simulated day of the demo city (scenario/day.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from core.influx import InfluxClient, InfluxConfig
from core.registry import load
from deploy.influxdb import start_influxd
from scenario.day import CityDay, day_bounds, simulate
from scenario.script import demo_script
from smartcity.data import demo_registry_path

DATABASE = "smartcity"


@pytest.fixture(scope="session")
def city_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CityDay]:
    """The last whole local day of the demo city in its own influxd (database "smartcity"), stopped at the end."""
    base = tmp_path_factory.mktemp("city-day")
    server = start_influxd(base / "influx")
    try:
        client = InfluxClient(InfluxConfig(server.url, DATABASE, timeout=60.0))
        try:
            client.create_database()
            start, end = day_bounds(time.time())
            path = demo_registry_path()
            yield simulate(client, load(path), path, base, start=start, end=end, script=demo_script())
        finally:
            client.close()
    finally:
        server.stop()
