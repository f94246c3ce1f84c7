"""Fixtures of the SensorThings MQTT tests: a registry with a classified device, a broker with open data.

The shared ``broker`` fixture (tests/conftest.py) has neither the sta-mqtt account nor an open-data
broker; ``sta_broker`` here starts the platform's broker with both accounts and the bridged open-data
broker of tests/deploy/test_mosquitto_sta_listener.py (the platform's broker is never anonymous).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from core import jsonfast
from core.registry import Registry, load
from core.settings import MqttSettings
from deploy.mosquitto import STA_BRIDGE_USER, STA_MQTT_USER, Broker
from deploy.processes import new_password
from smartcity.data import demo_registry_path
from tests.conftest import wait_for
from tests.deploy.open_data_clients import platform_with_open_data

CLASSIFIED = "vs-sl-102"  # made vertrouwelijk in the test registry


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    """The demo registry with one street light classified vertrouwelijk."""
    data = jsonfast.loads(demo_registry_path().read_bytes())
    for f in data["features"]:
        if f["properties"]["id"] == CLASSIFIED:
            f["properties"]["classification"] = "vertrouwelijk"
    path = tmp_path / "registry.geojson"
    path.write_bytes(jsonfast.dumps(data))
    return path


@pytest.fixture
def registry(registry_file: Path) -> Registry:
    """The test registry, loaded."""
    return load(registry_file)


@pytest.fixture
def sta_broker(tmp_path: Path, registry: Registry) -> Iterator[Broker]:
    """The platform's mosquitto (accounts for the gateways, sta-mqtt, sta-bridge and operator); its
    open_data_port is that of the bridged open-data broker (the platform's has no anonymous listener)."""
    users = {u: new_password() for u in (*registry.gateways, STA_MQTT_USER, STA_BRIDGE_USER, "operator")}
    with platform_with_open_data(tmp_path / "broker", users) as b:
        yield b


def account(broker: Broker, user: str) -> MqttSettings:
    """Settings that log in as user on the platform's listener."""
    return MqttSettings(broker.host, broker.port, user, broker.users[user])


@pytest.fixture
def anonymous(sta_broker: Broker) -> Iterator[Callable[..., tuple[paho.Client, list[paho.MQTTMessage]]]]:
    """A factory of anonymous clients on the open-data listener subscribed to topics, with what they receive."""
    made: list[paho.Client] = []

    def make(*subscriptions: str) -> tuple[paho.Client, list[paho.MQTTMessage]]:
        got: list[paho.MQTTMessage] = []
        subacks: list[int] = []
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"open-{new_password()[:8]}",
                             protocol=paho.MQTTv5)
        client.on_message = lambda _c, _u, m: got.append(m)
        client.on_subscribe = lambda _c, _u, mid, _r, _p: subacks.append(mid)
        assert sta_broker.open_data_port is not None
        client.connect(sta_broker.host, sta_broker.open_data_port)
        client.loop_start()
        made.append(client)
        wait_for(client.is_connected, 5)
        for topic in subscriptions:
            _rc, mid = client.subscribe(topic, qos=0)
            wait_for(lambda m=mid: m in subacks, 5)
        return client, got

    yield make
    for c in made:
        c.disconnect()
        c.loop_stop()
