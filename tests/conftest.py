"""Fixtures that start real mosquitto and influxd processes on free loopback ports, per test.

Both start in well under a second, so every test gets its own broker and database: no state
leaks between tests, and each server is stopped by PID when its test ends, pass or fail.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from core import mqtt
from core.influx import InfluxClient, InfluxConfig
from core.registry import Registry, load
from core.settings import MqttSettings
from deploy.influxdb import Influxd, start_influxd
from deploy.mosquitto import Broker, start_mosquitto
from deploy.processes import new_password
from smartcity.data import demo_registry_path

SERVICE_USERS = ("ingest", "rules", "operator", "api")

# Hypothesis caches what it learns under ./.hypothesis (even with database=None, at collection time):
# keep that out of the repository.
try:
    from hypothesis import configuration as _hypothesis_configuration

    _hypothesis_configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "smartcity-hypothesis")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass


@pytest.fixture
def demo_registry() -> Registry:
    """The demo city's registry."""
    return load(demo_registry_path())


@pytest.fixture
def broker(tmp_path: Path, demo_registry: Registry) -> Iterator[Broker]:
    """mosquitto with auth: one account per demo gateway and per service (ingest, rules, operator)."""
    users = {u: new_password() for u in (*demo_registry.gateways, *SERVICE_USERS, "gw-test")}
    b = start_mosquitto(tmp_path / "broker", users)
    yield b
    b.stop()


def settings_for(broker: Broker, user: str) -> MqttSettings:
    """Connection settings logging in as one of the broker's accounts."""
    return MqttSettings(broker.host, broker.port, user, broker.users[user])


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    """A private influxd with both ports on free loopback ports."""
    server = start_influxd(tmp_path / "influx")
    yield server
    server.stop()


@pytest.fixture
def influx(influxd: Influxd) -> Iterator[InfluxClient]:
    """A client of a freshly created database on the private influxd."""
    client = InfluxClient(InfluxConfig(influxd.url, "smartcity_test"))
    client.create_database()
    yield client
    client.close()


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
             what: str | None = None) -> object:
    """Poll until predicate() is truthy; fail the test with a clear message (what was awaited) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s: {what or getattr(predicate, '__name__', predicate)}")


@pytest.fixture
def mqtt_client(broker: Broker) -> Iterator[Callable[..., paho.Client]]:
    """A factory of connected paho clients (as operator unless told otherwise), disconnected at teardown."""
    clients: list[paho.Client] = []

    def make(user: str = "operator") -> paho.Client:
        client = mqtt.new_client(settings_for(broker, user), f"test-{user}-{len(clients)}-{new_password()[:6]}")
        client.connect(broker.host, broker.port)
        client.loop_start()
        clients.append(client)
        wait_for(client.is_connected, 5)
        return client

    yield make
    for c in clients:
        c.disconnect()
        c.loop_stop()
