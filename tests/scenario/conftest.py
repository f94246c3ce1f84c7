"""The scenario tests' fixture: a day of the Voorschoten and Wassenaar city at a small scale in a real influxd."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.influx import InfluxClient, InfluxConfig
from core.registry import load
from deploy.influxdb import start_influxd
from scenario.city import city_features, city_script, write_registry
from scenario.day import CityDay, day_bounds, simulate

# 2 % of the city's street lights (about 120), every wijk with its gauge, traffic lights and sensors, one
# gateway per wijk (16, four of them LoRaWAN): the full city's script at a size a CI run affords.
SCALE = 0.02


@pytest.fixture(scope="session")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CityDay, Path]]:
    """(the simulated day, the directory holding registry.geojson and the alarm store)."""
    base = tmp_path_factory.mktemp("small-city")
    server = start_influxd(base / "influx")
    try:
        client = InfluxClient(InfluxConfig(server.url, "smartcity", timeout=60.0))
        try:
            client.create_database()
            path = write_registry(base / "registry.geojson", SCALE)
            start, end = day_bounds(time.time())
            yield simulate(client, load(path), path, base, start=start, end=end,
                           script=city_script(city_features(SCALE))), base
        finally:
            client.close()
    finally:
        server.stop()
